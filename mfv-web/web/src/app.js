// The web pages' script: the server renders the layout and names the page in
// <body data-page>; this fills the page's body from the REST API.

import { start as shell } from "./ui/shell.js";
import { start as login } from "./ui/login.js";
import { start as dashboard } from "./ui/dashboard.js";
import { start as vms } from "./ui/vms.js";
import { start as vm } from "./ui/vm.js";
import { start as newVm } from "./ui/vm_new.js";
import { storage } from "./ui/storage.js";
import { start as users } from "./ui/users.js";
import { start as account } from "./ui/account.js";
import { start as audit } from "./ui/audit.js";
import { start as host } from "./ui/host.js";
import { start as network } from "./ui/network.js";
import { start as vncConsole } from "./ui/console.js";
import { start as serial } from "./ui/serial_page.js";

const views = {
  dashboard,
  vms,
  vm,
  "vm-new": newVm,
  storage,
  network,
  users,
  account,
  audit,
  host,
  console: vncConsole,
  serial,
};

const page = document.body.dataset.page;
if (page === "login") {
  login();
} else {
  shell();
  const view = document.getElementById("view");
  if (view && views[page]) {
    views[page](view);
  }
}
