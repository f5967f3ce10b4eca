// The storage page: each pool with its space and volumes; for those who may manage storage,
// pools added (a directory, an LVM volume group on an empty disk, an NFS share) and removed
// (their data stays), new empty volumes, deletion, uploads of images from this computer
// (resumable, see upload.js) and fetches of images by the host from a URL (a task followed to
// its end).

import { api, may } from "./api.js";
import { confirmDanger } from "./dialog.js";
import { alert, bytes, fill, h, panel, sentence, table } from "./dom.js";
import { clearErrors, errorSummary, field, showErrors } from "./validation.js";
import { TRIES, Upload, timeLeft } from "./upload.js";

const TASK_POLL_MS = 1000;

const poolPath = (pool) => `/api/v1/pools/${encodeURIComponent(pool)}`;

// A bar of how full a pool is, with its words.
function spaceBar(pool) {
  const share = pool.capacity_bytes ? pool.allocation_bytes / pool.capacity_bytes : 0;
  const fill = h("span", { class: `meter-fill${share > 0.9 ? " full" : ""}` });
  fill.style.width = `${Math.min(share * 100, 100).toFixed(1)}%`;
  return h(
    "div",
    { class: "space" },
    h(
      "div",
      {
        class: "meter",
        role: "meter",
        "aria-label": `Space used in ${pool.name}`,
        "aria-valuemin": 0,
        "aria-valuemax": pool.capacity_bytes,
        "aria-valuenow": pool.allocation_bytes,
      },
      fill,
    ),
    h(
      "p",
      { class: "hint" },
      `${bytes(pool.allocation_bytes)} used of ${bytes(pool.capacity_bytes)} · `,
      h("strong", {}, `${bytes(pool.available_bytes)} free`),
    ),
  );
}

function poolOptions(pools, chosen) {
  return pools
    .filter((pool) => pool.state === "running")
    .map((pool) => h("option", { value: pool.name, selected: pool.name === chosen }, `${pool.name} (${bytes(pool.available_bytes)} free)`));
}

export function storage(view) {
  const errors = h("div", { id: "storage-errors" });
  const tools = h("div", { class: "toolbar", id: "storage-tools" });
  const forms = h("div", { id: "storage-forms" });
  const transfers = h("div", { class: "transfers", id: "transfers", "aria-live": "polite" });
  const pools = h("div", { class: "pools", id: "pools" }, h("p", { class: "loading" }, "Loading…"));
  fill(view, errors, tools, forms, transfers, pools);
  let known = [];
  const active = new Map();

  async function load() {
    try {
      const { pools: list } = await api("GET", "/api/v1/pools", undefined, {
        waiting: () => fill(pools, h("p", { class: "loading" }, "The host is restoring its VMs and storage…")),
      });
      known = list;
      const volumes = await Promise.all(
        list.map((pool) =>
          pool.state === "running"
            ? api("GET", `${poolPath(pool.name)}/volumes`).then(
                (answer) => answer.volumes,
                (failure) => failure,
              )
            : Promise.resolve([]),
        ),
      );
      fill(pools, list.length === 0 ? emptyState() : null, list.map((pool, index) => poolPanel(pool, volumes[index])));
      fill(errors);
      // Volumes, uploads and fetches need a running pool to go to.
      const running = list.some((pool) => pool.state === "running");
      for (const id of ["upload-form", "fetch-form", "volume-form"]) {
        const button = tools.querySelector(`[aria-controls="${id}"]`);
        if (button) {
          button.disabled = !running;
          button.title = running ? "" : "Add storage first";
        }
      }
    } catch (failure) {
      fill(errors, alert(failure));
    }
  }

  // What a host without any pool shows: a fresh host set up in the browser has none.
  function emptyState() {
    return h(
      "section",
      { class: "panel empty-state", id: "no-storage" },
      h("h2", {}, "No storage yet"),
      h("p", {}, "VM disks and ISO images live in storage pools: a directory on the host, an LVM volume group on an empty disk, or an NFS share."),
      may.host
        ? h("button", { type: "button", id: "empty-add-storage", on: { click: () => openForm("pool-form", poolForm) } }, "Add storage…")
        : h("p", { class: "hint" }, "An administrator can add some."),
    );
  }

  async function removePool(pool) {
    const where = pool.kind === "logical" ? `the LVM volume group ${pool.name} and its logical volumes` : pool.path ? `the files in ${pool.path}` : "its files";
    const sure = await confirmDanger({
      title: `Remove storage pool ${pool.name}?`,
      consequence: `The pool ${pool.name} is stopped and taken out of the host's configuration. Its data stays: ${where} are not deleted, and adding the pool again with the same settings brings its volumes back.`,
      action: `Remove ${pool.name}`,
    });
    if (!sure) {
      return;
    }
    try {
      await api("DELETE", poolPath(pool.name));
    } catch (failure) {
      fill(errors, alert(failure));
      return;
    }
    load();
  }

  function poolPanel(pool, volumes) {
    const holders = volumes instanceof Error ? [] : [...new Set(volumes.flatMap((volume) => volume.used_by))].sort();
    const uploading = new Set([...active.values()].filter((upload) => upload.pool === pool.name).map((upload) => upload.name));
    return h(
      "section",
      { class: "panel pool", "data-pool": pool.name },
      h(
        "div",
        { class: "pool-head" },
        h("h2", {}, pool.name),
        h("span", { class: "hint" }, `${pool.kind} · ${pool.state}${pool.path ? ` · ${pool.path}` : ""}`),
        may.host
          ? h(
              "button",
              {
                type: "button",
                class: "small secondary danger-text pool-remove",
                "aria-label": `Remove storage pool ${pool.name}`,
                disabled: holders.length > 0,
                title: holders.length ? `Disks of ${holders.join(", ")} are in it: remove them from the VMs first` : null,
                on: { click: () => removePool(pool) },
              },
              "Remove…",
            )
          : null,
      ),
      spaceBar(pool),
      volumes instanceof Error
        ? alert(volumes)
        : table(
            [
              { title: "Volume", cell: (volume) => [volume.name, uploading.has(volume.name) ? h("span", { class: "badge busy-badge" }, "uploading") : null] },
              { title: "Format", cell: (volume) => volume.format },
              { title: "Size", class: "number", cell: (volume) => bytes(volume.capacity_bytes) },
              { title: "On disk", class: "number", cell: (volume) => bytes(volume.allocation_bytes) },
              {
                title: "Used by",
                cell: (volume) =>
                  volume.used_by.length
                    ? volume.used_by.flatMap((vm, index) => [index ? ", " : null, h("a", { href: `/vms/${encodeURIComponent(vm)}` }, vm)])
                    : h("span", { class: "hint" }, "free"),
              },
              may.storage
                ? {
                    title: "Actions",
                    class: "actions",
                    cell: (volume) =>
                      h(
                        "button",
                        {
                          type: "button",
                          class: "small secondary danger-text",
                          "aria-label": `Delete volume ${volume.name}`,
                          disabled: volume.used_by.length > 0,
                          title: volume.used_by.length ? `Used by ${volume.used_by.join(", ")}: remove it from the VM first` : null,
                          on: { click: () => deleteVolume(pool, volume) },
                        },
                        "Delete…",
                      ),
                  }
                : null,
            ].filter(Boolean),
            volumes,
            {
              empty: "No volumes.",
              label: `Volumes of ${pool.name}`,
              rowAttributes: (volume) => ({ "data-volume": volume.name }),
            },
          ),
    );
  }

  async function deleteVolume(pool, volume) {
    const sure = await confirmDanger({
      title: `Delete volume ${volume.name}?`,
      consequence: `The volume ${volume.name} in pool ${pool.name} and its ${bytes(volume.allocation_bytes)} of data on the host are destroyed. A VM using it cannot start without it. This cannot be undone.`,
      action: `Delete ${volume.name}`,
    });
    if (!sure) {
      return;
    }
    try {
      await api("DELETE", `${poolPath(pool.name)}/volumes/${encodeURIComponent(volume.name)}`);
      fill(errors);
    } catch (failure) {
      fill(errors, alert(failure));
    }
    load();
  }

  // One of the forms under the toolbar, shown by its button; only one at a time.
  function openForm(id, build) {
    const open = forms.querySelector(`#${id}`);
    fill(forms, open ? null : build());
    forms.querySelector("input:not([type=hidden]), select")?.focus();
    for (const button of tools.querySelectorAll("button[aria-controls]")) {
      button.setAttribute("aria-expanded", String(!open && button.getAttribute("aria-controls") === id));
    }
  }

  function closeForm() {
    fill(forms);
    for (const button of tools.querySelectorAll("button[aria-controls]")) {
      button.setAttribute("aria-expanded", "false");
    }
  }

  function formFrame(id, title, controls, submit, onSubmit) {
    const summary = errorSummary(`${id}-errors`);
    const form = h(
      "form",
      { class: "panel storage-form", id, novalidate: true },
      h("h2", {}, title),
      summary,
      controls,
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", id: `${id}-submit` }, submit),
        h("button", { type: "button", class: "secondary", on: { click: closeForm } }, "Cancel"),
      ),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      clearErrors(form, summary);
      try {
        await onSubmit(form, summary);
      } catch (failure) {
        showErrors(form, summary, failure);
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  // The LVM choice: the host's disks and partitions, those holding something not offered
  // (a volume group is built only on an empty device); a typed path when the host lists none.
  async function deviceControl() {
    const a = (word) => `${/^[aeiou]/i.test(word) ? "an" : "a"} ${word}`;
    let devices = [];
    try {
      const inventory = await api("GET", "/api/v1/host/inventory");
      for (const disk of inventory.block_devices ?? []) {
        if (disk.is_virtual || disk.removable || disk.read_only || disk.size_bytes === 0) {
          continue;
        }
        const held = disk.partition_table
          ? `${a(disk.partition_table)} partition table`
          : disk.partitions?.length
            ? "partitions"
            : disk.fs_type && `${a(disk.fs_type)} file system`;
        devices.push({ path: `/dev/${disk.name}`, size: disk.size_bytes, model: disk.model, held });
        for (const part of disk.partitions ?? []) {
          devices.push({ path: `/dev/${part.name}`, size: part.size_bytes, held: part.fs_type && `${a(part.fs_type)} file system` });
        }
      }
    } catch {
      devices = [];
    }
    if (devices.length === 0) {
      return h("input", { type: "text", id: "pool-device", name: "device", spellcheck: "false", autocomplete: "off", placeholder: "/dev/sdb" });
    }
    const empty = devices.filter((device) => !device.held);
    return h(
      "select",
      { id: "pool-device", name: "device" },
      empty.length ? null : h("option", { value: "" }, "No empty disk"),
      devices.map((device) =>
        h(
          "option",
          { value: device.path, disabled: Boolean(device.held) },
          `${device.path} · ${bytes(device.size)}${device.model ? ` · ${device.model}` : ""}${device.held ? ` (holds ${device.held})` : ""}`,
        ),
      ),
    );
  }

  function poolForm() {
    const name = h("input", { type: "text", id: "pool-name", name: "name", spellcheck: "false", autocomplete: "off", placeholder: "images" });
    const kind = h(
      "select",
      { id: "pool-kind", name: "kind" },
      h("option", { value: "dir" }, "Directory on the host"),
      h("option", { value: "logical" }, "LVM volume group on a disk"),
      h("option", { value: "nfs" }, "NFS share"),
    );
    const path = h("input", { type: "text", id: "pool-path", name: "path", spellcheck: "false", autocomplete: "off", placeholder: "/var/lib/mfv/images" });
    const server = h("input", { type: "text", id: "pool-server", name: "server", spellcheck: "false", autocomplete: "off", placeholder: "nas.example.org" });
    const exported = h("input", { type: "text", id: "pool-export", name: "export", spellcheck: "false", autocomplete: "off", placeholder: "/exports/vms" });
    const mount = h("input", { type: "text", id: "pool-mount", name: "mount", spellcheck: "false", autocomplete: "off", placeholder: "/var/lib/mfv/pools/NAME" });
    const device = h("div", { class: "field", "data-field": "device" }, h("label", { for: "pool-device" }, "Disk"), h("p", { class: "loading" }, "Reading the host's disks…"));
    deviceControl().then((control) => {
      fill(
        device,
        h("label", { for: "pool-device" }, "Disk"),
        control,
        h("p", { class: "hint" }, "A disk or partition that holds nothing (no partition table, no file system): the volume group is built on it, named after the pool."),
      );
    });
    const groups = {
      dir: field("Directory", path, {
        path: "path",
        hint: "On the host, made if missing. The host runs from memory: choose a directory on a mounted disk for images that must outlive a reboot.",
      }),
      logical: device,
      nfs: h(
        "div",
        {},
        h(
          "div",
          { class: "grid" },
          h("div", { class: "field wide", "data-field": "server" }, h("label", { for: "pool-server" }, "Server"), server),
          h("div", { class: "field wide", "data-field": "export" }, h("label", { for: "pool-export" }, "Export"), exported),
        ),
        field("Mount point", mount, { path: "nfs-path", optional: true, hint: "Where the host mounts the share (NFSv4, TCP port 2049)." }),
      ),
    };
    const show = () => {
      for (const [key, group] of Object.entries(groups)) {
        group.hidden = key !== kind.value;
      }
    };
    kind.addEventListener("change", show);
    show();
    return formFrame(
      "pool-form",
      "Add storage",
      [
        h(
          "div",
          { class: "grid" },
          h("div", { class: "field wide", "data-field": "name" }, h("label", { for: "pool-name" }, "Name"), name),
          h("div", { class: "field wide", "data-field": "kind" }, h("label", { for: "pool-kind" }, "Type"), kind),
        ),
        Object.values(groups),
        h("p", { class: "hint" }, "The pool is saved in the host's configuration and ready at once, and again after every boot."),
      ],
      "Add storage",
      async (form, summary) => {
        const body = { name: name.value.trim(), kind: kind.value };
        if (kind.value === "dir") {
          body.path = path.value.trim();
        } else if (kind.value === "logical") {
          body.device = form.querySelector("#pool-device")?.value.trim() ?? "";
        } else {
          body.server = server.value.trim();
          body.export = exported.value.trim();
          body.path = mount.value.trim();
        }
        try {
          await api("POST", "/api/v1/pools", body);
        } catch (failure) {
          // The NFS mount point is the API's `path`; its errors go beside it.
          if (kind.value === "nfs" && failure?.field === "path") {
            failure.field = "nfs-path";
          }
          throw failure;
        }
        closeForm();
        load();
      },
    );
  }

  function uploadForm() {
    const file = h("input", { type: "file", id: "upload-file", name: "file", accept: ".iso,.img,.raw,.qcow2,application/x-iso9660-image" });
    const pool = h("select", { id: "upload-pool", name: "pool" }, poolOptions(known));
    const name = h("input", { type: "text", id: "upload-name", name: "name", spellcheck: "false", autocomplete: "off" });
    const format = h(
      "select",
      { id: "upload-format", name: "format" },
      h("option", { value: "iso" }, "ISO image"),
      h("option", { value: "raw" }, "Raw disk image"),
      h("option", { value: "qcow2" }, "qcow2 disk image"),
    );
    file.addEventListener("change", () => {
      const chosen = file.files[0];
      if (!chosen) {
        return;
      }
      if (!name.value) {
        name.value = chosen.name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "");
      }
      format.value = /\.qcow2$/i.test(chosen.name) ? "qcow2" : /\.(img|raw)$/i.test(chosen.name) ? "raw" : "iso";
    });
    return formFrame(
      "upload-form",
      "Upload an image from this computer",
      [
        field("File", file, { path: "file", hint: "Sent in chunks; a dropped connection resumes where it stopped." }),
        h(
          "div",
          { class: "grid" },
          h("div", { class: "field wide", "data-field": "pool" }, h("label", { for: "upload-pool" }, "Pool"), pool),
          h("div", { class: "field wide", "data-field": "name" }, h("label", { for: "upload-name" }, "Volume name"), name),
        ),
        field("Format", format, { path: "format" }),
      ],
      "Upload",
      async (form, summary) => {
        const chosen = file.files[0];
        if (!chosen) {
          showErrors(form, summary, { field: "file", message: "pick the image to upload" });
          return;
        }
        const upload = new Upload({ file: chosen, pool: pool.value, name: name.value.trim(), format: format.value, onChange: showUpload });
        await upload.create();
        closeForm();
        showUpload(upload);
        upload.run();
      },
    );
  }

  function fetchForm() {
    const url = h("input", { type: "text", id: "fetch-url", name: "url", inputmode: "url", spellcheck: "false", placeholder: "https://mirror.example/image.iso" });
    const pool = h("select", { id: "fetch-pool", name: "pool" }, poolOptions(known));
    const volume = h("input", { type: "text", id: "fetch-volume", name: "volume", spellcheck: "false", autocomplete: "off" });
    const sha256 = h("input", { type: "text", id: "fetch-sha256", name: "sha256", class: "mono", spellcheck: "false", autocomplete: "off" });
    // The volume is named after the URL's file until the person names it.
    let named = false;
    volume.addEventListener("input", () => {
      named = volume.value !== "";
    });
    url.addEventListener("input", () => {
      if (!named) {
        const last = url.value.split(/[?#]/)[0].split("/").pop() ?? "";
        volume.value = last.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "");
      }
    });
    return formFrame(
      "fetch-form",
      "Fetch an image from a URL",
      [
        field("URL", url, { path: "url", hint: "The host downloads it itself (http or https); the server must say the size." }),
        h(
          "div",
          { class: "grid" },
          h("div", { class: "field wide", "data-field": "pool" }, h("label", { for: "fetch-pool" }, "Pool"), pool),
          h("div", { class: "field wide", "data-field": "volume,name" }, h("label", { for: "fetch-volume" }, "Volume name"), volume),
        ),
        field("SHA-256", sha256, { path: "sha256", optional: true, hint: "When given, the image is kept only if it matches." }),
      ],
      "Fetch",
      async () => {
        const body = { url: url.value.trim(), volume: volume.value.trim() };
        if (sha256.value.trim()) {
          body.sha256 = sha256.value.trim();
        }
        const { task } = await api("POST", `${poolPath(pool.value)}/fetches`, body);
        closeForm();
        followFetch(task, body);
        load();
      },
    );
  }

  function volumeForm() {
    const pool = h("select", { id: "volume-pool", name: "pool" }, poolOptions(known));
    const name = h("input", { type: "text", id: "volume-name", name: "name", spellcheck: "false", autocomplete: "off" });
    const size = h("input", { type: "number", id: "volume-size", name: "size_gib", min: 1, step: 1, value: 10, class: "short" });
    const format = h(
      "select",
      { id: "volume-format", name: "format" },
      h("option", { value: "qcow2" }, "qcow2 (grows as written, snapshots)"),
      h("option", { value: "raw" }, "raw"),
    );
    return formFrame(
      "volume-form",
      "New empty volume",
      [
        h(
          "div",
          { class: "grid" },
          h("div", { class: "field wide", "data-field": "pool" }, h("label", { for: "volume-pool" }, "Pool"), pool),
          h("div", { class: "field wide", "data-field": "name" }, h("label", { for: "volume-name" }, "Name"), name),
        ),
        h(
          "div",
          { class: "grid" },
          h("div", { class: "field narrow", "data-field": "size_gib,size_bytes" }, h("label", { for: "volume-size" }, "Size (GiB)"), size),
          h("div", { class: "field wide", "data-field": "format" }, h("label", { for: "volume-format" }, "Format"), format),
        ),
      ],
      "Create volume",
      async () => {
        const gib = Number(size.value);
        await api("POST", `${poolPath(pool.value)}/volumes`, {
          name: name.value.trim(),
          size_gib: Number.isInteger(gib) && size.value !== "" ? gib : size.value,
          format: format.value,
        });
        closeForm();
        load();
      },
    );
  }

  // A transfer's box in the transfers area, made once per key.
  function transferBox(key, title) {
    let box = transfers.querySelector(`[data-transfer="${CSS.escape(key)}"]`);
    if (!box) {
      box = h(
        "section",
        { class: "panel transfer", "data-transfer": key },
        h("h2", {}, title),
        h("progress", { max: 100, value: 0 }),
        h("p", { class: "transfer-status", role: "status" }),
        h("div", { class: "transfer-note" }),
        h("div", { class: "buttons" }),
      );
      transfers.prepend(box);
    }
    return box;
  }

  function showUpload(upload) {
    const key = `upload-${upload.id ?? upload.name}`;
    active.set(key, upload);
    const box = transferBox(key, `Upload of ${upload.name} to ${upload.pool}`);
    box.id = "upload-box";
    box.dataset.state = upload.state;
    const progress = box.querySelector("progress");
    progress.max = upload.size;
    progress.value = upload.sent;
    const percent = upload.size ? Math.floor((upload.sent / upload.size) * 100) : 0;
    const figures = `${bytes(upload.sent)} of ${bytes(upload.size)} (${percent} %)`;
    const rate = upload.speed > 0 && upload.state === "sending" ? ` · ${bytes(upload.speed)}/s · ${timeLeft((upload.size - upload.sent) / upload.speed)} left` : "";
    const words = {
      starting: "Starting…",
      sending: `${figures}${rate}`,
      retrying: `${figures} · connection lost, resuming… (try ${upload.attempt + 1} of ${TRIES})`,
      paused: `${figures} · stopped after ${TRIES} failed tries`,
      done: `${figures} · done: volume ${upload.name} is ready`,
      failed: `${figures} · failed`,
      cancelled: "Cancelled: the unfinished volume was deleted.",
    };
    fill(box.querySelector(".transfer-status"), words[upload.state] ?? figures);
    box.classList.toggle("trouble", ["retrying", "paused", "failed"].includes(upload.state));
    const note = box.querySelector(".transfer-note");
    if (upload.state === "paused") {
      fill(
        note,
        h(
          "p",
          { class: "warning" },
          `${sentence(upload.problem?.message)} Check the connection, then press Resume: the upload goes on from byte ${upload.offset}. If you reload this page, pick the same file again to resume.`,
        ),
      );
    } else if (upload.state === "failed") {
      const gone = upload.problem?.status === 404;
      fill(
        note,
        h(
          "p",
          { class: "error" },
          gone
            ? `The host no longer knows this upload (mfv-web restarted): delete the volume ${upload.name} and upload again.`
            : sentence(upload.problem?.message),
        ),
      );
    } else if (upload.state === "retrying") {
      fill(note, h("p", { class: "hint" }, `${sentence(upload.problem?.message)} Asking the host where the upload stopped…`));
    } else {
      fill(note);
    }
    const buttons = [];
    if (upload.state === "paused") {
      buttons.push(h("button", { type: "button", class: "small", id: "upload-resume", on: { click: () => upload.resume().then(load) } }, "Resume"));
    }
    if (["sending", "retrying", "paused"].includes(upload.state)) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "small secondary danger-text",
            on: {
              click: async () => {
                const sure = await confirmDanger({
                  title: `Cancel the upload of ${upload.name}?`,
                  consequence: `The ${bytes(upload.sent)} sent so far and the volume ${upload.name} in ${upload.pool} are deleted.`,
                  action: "Cancel upload",
                });
                if (sure) {
                  upload.cancel().catch((failure) => fill(errors, alert(failure)));
                }
              },
            },
          },
          "Cancel upload…",
        ),
      );
    }
    if (["done", "failed", "cancelled"].includes(upload.state)) {
      active.delete(key);
      buttons.push(h("button", { type: "button", class: "small secondary", on: { click: () => box.remove() } }, "Dismiss"));
      load();
    }
    fill(box.querySelector(".buttons"), buttons);
  }

  // Follows the fetch `task` to its end, showing its progress.
  async function followFetch(task, request) {
    const box = transferBox(`fetch-${task.id}`, `Fetch of ${request.volume} from ${request.url.split(/[?#]/)[0]}`);
    box.id = `fetch-box-${task.id}`;
    box.classList.add("fetch");
    const progress = box.querySelector("progress");
    const status = box.querySelector(".transfer-status");
    const note = box.querySelector(".transfer-note");
    const dismiss = h("button", { type: "button", class: "small secondary", on: { click: () => box.remove() } }, "Dismiss");
    for (;;) {
      box.dataset.state = task.state;
      if (task.progress === null || task.progress === undefined) {
        progress.removeAttribute("value");
      } else {
        progress.value = task.progress;
      }
      if (task.state === "running") {
        fill(status, `${task.progress ?? 0} % · ${sentence(task.message)}`);
      } else if (task.state === "succeeded") {
        progress.value = 100;
        const result = task.result ?? {};
        fill(status, `100 % · done: volume ${result.volume?.name ?? request.volume}, ${bytes(result.size_bytes)}`);
        fill(
          note,
          h(
            "p",
            { class: "hint" },
            result.sha256_checked ? "The SHA-256 matched." : `SHA-256 ${result.sha256 ?? "–"} (not checked: none was given).`,
          ),
        );
        fill(box.querySelector(".buttons"), dismiss);
        load();
        return;
      } else {
        box.classList.add("trouble");
        progress.hidden = true;
        fill(status, "Failed.");
        fill(
          note,
          h(
            "p",
            { class: "error" },
            `${sentence(task.error?.message ?? task.message)} Check that the host reaches the URL and that the checksum is the image's, then fetch again.`,
          ),
        );
        fill(box.querySelector(".buttons"), dismiss);
        load();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, TASK_POLL_MS));
      try {
        ({ task } = await api("GET", `/api/v1/tasks/${encodeURIComponent(task.id)}`));
      } catch (failure) {
        fill(note, alert(failure));
      }
    }
  }

  // Uploads the host has unfinished that this page is not sending: resumable by picking the
  // same file again (a page that was reloaded lost its file).
  async function showUnfinished() {
    let uploads = [];
    try {
      ({ uploads } = await api("GET", "/api/v1/uploads"));
    } catch {
      return;
    }
    for (const left of uploads.filter((upload) => upload.state === "receiving")) {
      const key = `upload-${left.id}`;
      if (active.has(key)) {
        continue;
      }
      const box = transferBox(key, `Unfinished upload of ${left.volume} to ${left.pool}`);
      box.classList.add("trouble");
      const progress = box.querySelector("progress");
      progress.max = left.size_bytes;
      progress.value = left.offset;
      fill(box.querySelector(".transfer-status"), `${bytes(left.offset)} of ${bytes(left.size_bytes)}, started by ${left.started_by}`);
      const file = h("input", { type: "file", id: `resume-file-${left.id}`, "aria-label": `The file of ${left.volume}` });
      file.addEventListener("change", () => {
        const chosen = file.files[0];
        if (!chosen) {
          return;
        }
        const upload = new Upload({ file: chosen, pool: left.pool, name: left.volume, format: left.format, id: left.id, onChange: showUpload });
        upload.takeUp().catch((failure) => {
          file.value = "";
          fill(box.querySelector(".transfer-note"), alert(failure), file);
        });
      });
      fill(
        box.querySelector(".transfer-note"),
        h("p", { class: "hint" }, "To resume, pick the same file again: the page cannot keep a file across a reload."),
        file,
      );
      fill(
        box.querySelector(".buttons"),
        h(
          "button",
          {
            type: "button",
            class: "small secondary danger-text",
            on: {
              click: async () => {
                try {
                  await api("DELETE", `/api/v1/uploads/${encodeURIComponent(left.id)}`);
                  box.remove();
                  load();
                } catch (failure) {
                  fill(box.querySelector(".transfer-note"), alert(failure));
                }
              },
            },
          },
          "Cancel upload",
        ),
      );
    }
  }

  if (may.storage) {
    const tool = (id, label, build) =>
      h(
        "button",
        {
          type: "button",
          class: "small",
          id: `open-${id}`,
          "aria-controls": id,
          "aria-expanded": "false",
          on: { click: () => openForm(id, build) },
        },
        label,
      );
    fill(
      tools,
      may.host ? tool("pool-form", "Add storage…", poolForm) : null,
      tool("upload-form", "Upload image…", uploadForm),
      tool("fetch-form", "Fetch from URL…", fetchForm),
      h("button", { type: "button", class: "small secondary", id: "open-volume-form", "aria-controls": "volume-form", "aria-expanded": "false", on: { click: () => openForm("volume-form", volumeForm) } }, "New volume…"),
    );
    showUnfinished();
  } else {
    tools.remove();
  }
  window.addEventListener("beforeunload", (event) => {
    if ([...active.values()].some((upload) => ["sending", "retrying"].includes(upload.state))) {
      event.preventDefault();
    }
  });
  load();
}
