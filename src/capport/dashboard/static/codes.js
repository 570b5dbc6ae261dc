// Voucher codes read from pasted text or from a CSV file, with no DOM, so
// the parsing can be tested on its own.

// Codes as capport generates them: ten characters, with or without the dash.
const CODE = /^[A-Za-z0-9]{5}-?[A-Za-z0-9]{5}$/;

export function normaliseCode(text) {
  const bare = text.replace(/-/g, "").toUpperCase();
  return `${bare.slice(0, 5)}-${bare.slice(5)}`;
}

// Read codes from pasted lines or from a CSV whose header names a "code"
// column, as `capport vouchers create --csv` writes.
export function parseCodes(text) {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
  if (lines.length === 0) {
    return [];
  }
  const header = lines[0].toLowerCase().split(",").map((cell) => cell.trim());
  const codeColumn = header.indexOf("code");
  if (codeColumn < 0) {
    return lines.filter((line) => CODE.test(line)).map((line) => ({ code: normaliseCode(line) }));
  }
  const column = (name) => header.indexOf(name);
  return lines.slice(1).map((line) => line.split(",")).filter(
    (cells) => CODE.test((cells[codeColumn] || "").trim()),
  ).map((cells) => ({
    code: normaliseCode(cells[codeColumn].trim()),
    id: column("id") >= 0 ? cells[column("id")] : undefined,
    duration: column("duration_seconds") >= 0 ? Number(cells[column("duration_seconds")]) : 0,
    devices: column("max_devices") >= 0 ? Number(cells[column("max_devices")]) : 0,
  }));
}
