// The read-only pages of this version: storage pools, a table of what its API route answers.

import { api } from "./api.js";
import { alert, bytes, fill, table } from "./dom.js";

async function show(view, load) {
  try {
    fill(view, ...(await load()));
  } catch (failure) {
    fill(view, alert(failure));
  }
}

export function storage(view) {
  show(view, async () => {
    const { pools } = await api("GET", "/api/v1/pools");
    return [
      table(
        [
          { title: "Pool", cell: (pool) => pool.name },
          { title: "Type", cell: (pool) => pool.kind },
          { title: "State", cell: (pool) => pool.state },
          { title: "Path", class: "mono", cell: (pool) => pool.path ?? "–" },
          { title: "Used", class: "number", cell: (pool) => `${bytes(pool.allocation_bytes)} of ${bytes(pool.capacity_bytes)}` },
          { title: "Free", class: "number", cell: (pool) => bytes(pool.available_bytes) },
        ],
        pools,
        { empty: "There are no storage pools.", label: "Storage pools" },
      ),
    ];
  });
}
