// The live sessions table: search, sort, and revoke with a confirmation.

import { request, showError } from "./api.js";
import { formatBytes, formatClock, formatDuration } from "./format.js";

const COLUMNS = [
  { key: "mac", label: "MAC", text: (c) => c.mac },
  { key: "ip", label: "IP", text: (c) => c.ip },
  { key: "method", label: "Method", text: (c) => c.method },
  { key: "subject", label: "User / voucher", text: (c) => c.subject || "–" },
  { key: "since", label: "Since", text: (c) => formatClock(c.since) },
  { key: "remaining", label: "Remaining", text: (c) => formatDuration(c.remaining) },
  { key: "bytes_up", label: "Sent", text: (c) => formatBytes(c.bytes_up) },
  { key: "bytes_down", label: "Received", text: (c) => formatBytes(c.bytes_down) },
];

export class SessionsTable {
  constructor(onChange) {
    this.clients = [];
    this.sort = { key: "since", descending: true };
    this.query = "";
    this.onChange = onChange;
    this.rows = document.getElementById("session-rows");
    this.dialog = document.getElementById("confirm-revoke");
    document.getElementById("search").addEventListener("input", (event) => {
      this.query = event.target.value.trim().toLowerCase();
      this.render();
    });
    for (const button of document.querySelectorAll("#sessions th button[data-sort]")) {
      button.addEventListener("click", () => this.sortBy(button.dataset.sort));
    }
    // Narrow screens hide the table head, so a menu offers the same orders.
    document.getElementById("sort-select").addEventListener("change", (event) => {
      const [key, direction] = event.target.value.split(":");
      this.sort = { key, descending: direction === "desc" };
      this.render();
    });
    this.rows.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-mac]");
      if (button) {
        this.confirmRevoke(button.dataset.mac, button.dataset.ip);
      }
    });
    this.dialog.addEventListener("close", () => this.dialogClosed());
  }

  update(clients) {
    this.clients = clients;
    this.render();
  }

  sortBy(key) {
    if (this.sort.key === key) {
      this.sort.descending = !this.sort.descending;
    } else {
      this.sort = { key, descending: false };
    }
    this.render();
  }

  visible() {
    const matches = this.clients.filter((client) => {
      if (!this.query) {
        return true;
      }
      const haystack = [client.mac, client.ip, client.method, client.subject || ""];
      return haystack.some((field) => field.toLowerCase().includes(this.query));
    });
    const { key, descending } = this.sort;
    matches.sort((a, b) => {
      const left = a[key] ?? "";
      const right = b[key] ?? "";
      const order = typeof left === "number" && typeof right === "number"
        ? left - right
        : String(left).localeCompare(String(right), undefined, { numeric: true });
      return descending ? -order : order;
    });
    return matches;
  }

  render() {
    const shown = this.visible();
    this.rows.replaceChildren(...shown.map((client) => this.row(client)));
    document.getElementById("empty").hidden = shown.length > 0;
    const count = document.getElementById("session-count");
    count.textContent = shown.length === this.clients.length
      ? `(${this.clients.length})`
      : `(${shown.length} of ${this.clients.length})`;
    for (const button of document.querySelectorAll("#sessions th button[data-sort]")) {
      const header = button.parentElement;
      if (button.dataset.sort === this.sort.key) {
        header.setAttribute("aria-sort", this.sort.descending ? "descending" : "ascending");
      } else {
        header.removeAttribute("aria-sort");
      }
    }
  }

  row(client) {
    const row = document.createElement("tr");
    row.dataset.mac = client.mac;
    for (const column of COLUMNS) {
      const cell = document.createElement("td");
      cell.dataset.label = column.label;
      cell.className = `col-${column.key}`;
      cell.textContent = column.text(client);
      row.append(cell);
    }
    const actions = document.createElement("td");
    actions.className = "col-actions";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "danger small";
    button.textContent = "Revoke";
    button.dataset.mac = client.mac;
    button.dataset.ip = client.ip;
    button.setAttribute("aria-label", `Revoke ${client.mac}`);
    actions.append(button);
    row.append(actions);
    return row;
  }

  confirmRevoke(mac, ip) {
    this.pendingMac = mac;
    document.getElementById("confirm-mac").textContent = mac;
    document.getElementById("confirm-ip").textContent = ip;
    this.dialog.returnValue = "";
    this.dialog.showModal();
  }

  async dialogClosed() {
    const mac = this.pendingMac;
    this.pendingMac = null;
    if (this.dialog.returnValue !== "revoke" || !mac) {
      return;
    }
    try {
      await request(`/api/v1/clients/${encodeURIComponent(mac)}`, { method: "DELETE" });
      showError("");
    } catch (error) {
      showError(`Revoking ${mac} failed: ${error.message}`);
    }
    this.onChange();
  }
}
