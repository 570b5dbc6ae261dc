// Numbers as the dashboard shows them.

const BYTE_UNITS = ["B", "kB", "MB", "GB", "TB", "PB"];

// Decimal units, as network traffic is usually counted: 1 kB = 1000 bytes.
export function formatBytes(bytes) {
  let value = Number(bytes) || 0;
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

export function formatDuration(seconds) {
  const total = Math.max(0, Math.round(Number(seconds) || 0));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  if (days > 0) {
    return `${days} d ${hours} h`;
  }
  if (hours > 0) {
    return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  }
  return `${minutes} min ${String(total % 60).padStart(2, "0")} s`;
}

// Time of day for today, otherwise the date and time; epoch seconds in.
export function formatClock(epochSeconds) {
  const moment = new Date(epochSeconds * 1000);
  const now = new Date();
  const time = moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (moment.toDateString() === now.toDateString()) {
    return time;
  }
  const date = moment.toLocaleDateString([], { month: "short", day: "numeric" });
  return `${date} ${time}`;
}

export function formatHour(epochSeconds) {
  const moment = new Date(epochSeconds * 1000);
  return `${String(moment.getHours()).padStart(2, "0")}:00`;
}

export function formatCount(value) {
  return Number(value || 0).toLocaleString();
}

// A voucher's time in words: "2 hours", "90 minutes", "1 day".
export function formatPeriod(seconds) {
  const units = [[86400, "day"], [3600, "hour"], [60, "minute"]];
  for (const [size, name] of units) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${name}${count === 1 ? "" : "s"}`;
    }
  }
  return formatDuration(seconds);
}
