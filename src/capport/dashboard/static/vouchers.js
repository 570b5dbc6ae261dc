// The voucher sheet: create vouchers or lay out codes already printed to a
// CSV file, as cards ready to print and cut.

import { request, setUpSignIn, showError } from "./api.js";
import { parseCodes } from "./codes.js";
import { formatPeriod } from "./format.js";

function describe(voucher) {
  const parts = [];
  if (voucher.duration) {
    parts.push(`${formatPeriod(voucher.duration)} of access`);
  }
  if (voucher.devices) {
    parts.push(voucher.devices === 1 ? "1 device" : `${voucher.devices} devices`);
  }
  return parts.join(" · ");
}

// vouchers: [{code, id?, duration?, devices?}]
function layOut(vouchers) {
  const sheet = document.getElementById("sheet");
  const heading = document.getElementById("heading").value;
  const note = document.getElementById("note").value;
  const cards = vouchers.map((voucher) => {
    const card = document.createElement("article");
    card.className = "voucher";
    const title = document.createElement("h3");
    title.textContent = heading;
    const code = document.createElement("p");
    code.className = "code";
    code.textContent = voucher.code;
    const details = document.createElement("p");
    details.className = "details";
    details.textContent = describe(voucher);
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.textContent = note;
    card.append(title, code, details, hint);
    if (voucher.id !== undefined) {
      const number = document.createElement("span");
      number.className = "number";
      number.textContent = `#${voucher.id}`;
      card.append(number);
    }
    return card;
  });
  sheet.replaceChildren(...cards);
  sheet.dataset.count = String(cards.length);
  document.getElementById("print").disabled = cards.length === 0;
}

let current = [];

function show(vouchers) {
  current = vouchers;
  layOut(current);
}

async function createVouchers(event) {
  event.preventDefault();
  const value = (id) => document.getElementById(id).value;
  const duration = Number(value("duration")) * Number(value("duration-unit"));
  const body = {
    count: Number(value("count")),
    duration,
    max_devices: Number(value("devices")),
  };
  if (value("uses")) {
    body.max_uses = Number(value("uses"));
  }
  try {
    const response = await request("/api/v1/vouchers", { method: "POST", json: body });
    const created = (await response.json()).vouchers;
    show(created.map((voucher) => ({
      code: voucher.code, id: voucher.id, duration, devices: body.max_devices,
    })));
    showError("");
  } catch (error) {
    showError(`Creating vouchers failed: ${error.message}`);
  }
}

async function layOutExisting(event) {
  event.preventDefault();
  let text = document.getElementById("existing-codes").value;
  const file = document.getElementById("csv-file").files[0];
  if (file) {
    text = `${await file.text()}\n`;
  }
  const vouchers = parseCodes(text);
  if (vouchers.length === 0) {
    showError("No voucher codes found: expected codes such as K7QXM-3HNPD.");
    return;
  }
  showError("");
  show(vouchers);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("create-form").addEventListener("submit", createVouchers);
  document.getElementById("existing-form").addEventListener("submit", layOutExisting);
  document.getElementById("print").addEventListener("click", () => window.print());
  for (const id of ["heading", "note"]) {
    document.getElementById(id).addEventListener("input", () => layOut(current));
  }
  setUpSignIn(() => {});
});
