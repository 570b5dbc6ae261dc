// The sessions page: status cards, the 24-hour charts and the sessions table.

import { getJson, request, setUpSignIn, showError, storedToken } from "./api.js";
import { drawChart } from "./charts.js";
import { formatBytes, formatCount, formatDuration, formatHour } from "./format.js";
import { SessionsTable } from "./sessions.js";

const CLIENTS_EVERY_MS = 5000;
const HISTORY_EVERY_MS = 60000;

let table;
let clientsTimer = null;
let historyTimer = null;

async function refreshClients() {
  if (!storedToken()) {
    return;
  }
  try {
    const [clients, status] = await Promise.all([
      getJson("/api/v1/clients"),
      getJson("/api/v1/status"),
    ]);
    table.update(clients.clients);
    document.getElementById("stat-active").textContent = formatCount(status.sessions.active);
    document.getElementById("stat-uptime").textContent = formatDuration(status.uptime_seconds);
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    showError("");
  } catch (error) {
    showError(`Loading the sessions failed: ${error.message}`);
  }
}

async function refreshHistory() {
  if (!storedToken()) {
    return;
  }
  let history;
  try {
    history = await getJson("/api/v1/history?hours=24");
  } catch (error) {
    showError(`Loading the history failed: ${error.message}`);
    return;
  }
  const points = history.points;
  const series = (value) => points.map((point) => ({ x: point.start, y: value(point) }));
  drawChart(document.getElementById("chart-active"), series((p) => p.active_devices), {
    kind: "line", minimum: 5, format: formatCount, label: formatHour, title: "Active devices per hour",
  });
  drawChart(document.getElementById("chart-logins"), series((p) => p.logins), {
    kind: "bars", minimum: 5, format: formatCount, label: formatHour, title: "Logins per hour",
  });
  drawChart(document.getElementById("chart-traffic"), series((p) => p.forwarded_bytes), {
    kind: "bars", minimum: 1000, format: formatBytes, label: formatHour, title: "Traffic per hour",
  });
  const logins = points.reduce((sum, point) => sum + point.logins, 0);
  const traffic = points.reduce((sum, point) => sum + point.forwarded_bytes, 0);
  document.getElementById("stat-logins").textContent = formatCount(logins);
  document.getElementById("stat-traffic").textContent = formatBytes(traffic);
}

function setAutoRefresh(enabled) {
  clearInterval(clientsTimer);
  clearInterval(historyTimer);
  clientsTimer = null;
  historyTimer = null;
  if (enabled) {
    clientsTimer = setInterval(refreshClients, CLIENTS_EVERY_MS);
    historyTimer = setInterval(refreshHistory, HISTORY_EVERY_MS);
  }
}

// The CSV needs the bearer token, which a plain link cannot send, so it is
// fetched and handed to the browser as a download.
async function downloadAccounting(event) {
  event.preventDefault();
  try {
    const response = await request("/api/v1/accounting.csv");
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = "accounting.csv";
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (error) {
    showError(`Exporting the accounting records failed: ${error.message}`);
  }
}

function start() {
  refreshClients();
  refreshHistory();
  setAutoRefresh(document.getElementById("auto-refresh").checked);
}

document.addEventListener("DOMContentLoaded", () => {
  table = new SessionsTable(refreshClients);
  document.getElementById("refresh").addEventListener("click", () => {
    refreshClients();
    refreshHistory();
  });
  document.getElementById("auto-refresh").addEventListener("change", (event) => {
    setAutoRefresh(event.target.checked);
  });
  document.getElementById("accounting-link").addEventListener("click", downloadAccounting);
  setUpSignIn(start);
});
