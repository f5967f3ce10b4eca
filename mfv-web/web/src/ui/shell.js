// The layout's own controls: the navigation on a narrow screen, and signing out.

import { api } from "./api.js";

export function start() {
  const toggle = document.getElementById("nav-toggle");
  const nav = document.getElementById("nav");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      nav.classList.toggle("open", open);
      if (open) {
        nav.querySelector("a")?.focus();
      }
    });
    nav.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && nav.classList.contains("open")) {
        toggle.click();
        toggle.focus();
      }
    });
  }
  document.getElementById("sign-out")?.addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/v1/session");
    } finally {
      location.assign("/login");
    }
  });
}
