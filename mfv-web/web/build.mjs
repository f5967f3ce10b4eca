// Bundles the pages' scripts and styles for mfv-web, which embeds them (build.rs).
//
// Every top-level *.js and *.css file in src/ is an entry point. Scripts are bundled as ES
// modules (noVNC is ESM only and awaits at its top level; the pages load them with
// <script type="module">), styles a script imports land in a stylesheet of the script's
// name. Top-level *.svg files (the site's icon) are taken as they are. Each bundle is written minified as dist/NAME.HASH.EXT, HASH the first 10 hex digits
// of the SHA-256 of its bytes, with a gzip (.gz) and a brotli (.br) copy beside it, and
// dist/manifest.json maps each logical name (vnc.js) to its file (vnc.0123456789.js).
//
// The output is the same bytes for the same sources and packages: esbuild is
// deterministic, the compressed copies carry no time stamp, the manifest is sorted. A file
// whose bytes did not change is not written again, so its time stays and cargo does not
// rebuild mfv-web; files of older builds are removed.
//
// Run by `cargo xtask web` after `npm ci --ignore-scripts`; needs only node and the
// packages in node_modules.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const sources = join(here, 'src');
const dist = join(here, 'dist');

const entryPoints = readdirSync(sources, { withFileTypes: true })
  .filter((entry) => entry.isFile() && ['.js', '.css'].includes(extname(entry.name)))
  .map((entry) => entry.name)
  .sort();
if (entryPoints.length === 0) {
  throw new Error(`no entry points (*.js, *.css) in ${sources}`);
}

const result = await build({
  absWorkingDir: here,
  entryPoints: entryPoints.map((name) => join('src', name)),
  outdir: 'out',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  write: false,
  logLevel: 'warning',
});

const outputs = result.outputFiles.map((output) => {
  const logical = basename(output.path);
  if (!['.js', '.css'].includes(extname(logical))) {
    throw new Error(`esbuild wrote ${logical}: only scripts and stylesheets are embedded`);
  }
  return [logical, Buffer.from(output.contents)];
});
const images = readdirSync(sources, { withFileTypes: true })
  .filter((entry) => entry.isFile() && extname(entry.name) === '.svg')
  .map((entry) => entry.name)
  .sort()
  .map((name) => [name, readFileSync(join(sources, name))]);

const files = new Map();
const manifest = {};
for (const [logical, bytes] of [...outputs, ...images]) {
  const extension = extname(logical);
  if (logical in manifest) {
    throw new Error(`two bundles are named ${logical}: rename one entry point in src/`);
  }
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 10);
  const file = `${basename(logical, extension)}.${hash}${extension}`;
  const gzip = gzipSync(bytes, { level: 9 });
  const brotli = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  });
  files.set(file, bytes);
  files.set(`${file}.gz`, gzip);
  files.set(`${file}.br`, brotli);
  manifest[logical] = file;
  console.log(
    `web: dist/${file}: ${bytes.length} bytes, gzip ${gzip.length}, brotli ${brotli.length}`,
  );
}

const sorted = Object.fromEntries(
  Object.keys(manifest)
    .sort()
    .map((name) => [name, manifest[name]]),
);
files.set('manifest.json', Buffer.from(`${JSON.stringify(sorted, null, 2)}\n`));

mkdirSync(dist, { recursive: true });
for (const old of readdirSync(dist)) {
  if (!files.has(old)) {
    rmSync(join(dist, old), { recursive: true, force: true });
  }
}
let written = 0;
for (const [name, bytes] of files) {
  const path = join(dist, name);
  if (!existsSync(path) || !readFileSync(path).equals(bytes)) {
    writeFileSync(path, bytes);
    written += 1;
  }
}
console.log(
  `web: dist/manifest.json: ${Object.keys(sorted).length} bundles; ${written} of ${files.size} files written, the others unchanged`,
);
