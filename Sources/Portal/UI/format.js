// Times as the UI shows them: local date and time, relative ("in 23 h"),
// and a clock with milliseconds (the test console).

/** "2026-12-03 09:37" in local time, from Unix seconds. */
export function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "in 23 h", "5 min ago": how far a Unix time is from now. */
export function relativeTime(seconds) {
  const delta = seconds - Date.now() / 1000;
  const abs = Math.abs(delta);
  const [n, unit] = abs < 90 ? [abs, "s"] : abs < 5400 ? [abs / 60, "min"] : abs < 129600 ? [abs / 3600, "h"] : [abs / 86400, "d"];
  const text = `${Math.round(n)} ${unit}`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

export function clockTime(date) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}
