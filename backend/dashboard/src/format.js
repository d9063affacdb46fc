// Formatting and tiny DOM helpers shared by the views.

// Amounts (token base units, Wh) arrive as decimal strings (backend/core/json_ints.py): a JS
// number is exact only up to 2^53 − 1. `scaled` divides exactly with BigInt.
const group = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
/** `value` (a decimal string, bigint or number of base units) / 10^`decimals`, grouped, with
 * `minFraction`..`maxFraction` fraction digits (truncated, never rounded up). */
export function scaled(value, decimals, { minFraction = 0, maxFraction = decimals } = {}) {
  const units = BigInt(value);
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  let fraction = digits.slice(digits.length - decimals, digits.length - decimals + maxFraction).replace(/0+$/, "");
  fraction = fraction.padEnd(minFraction, "0");
  return `${negative ? "-" : ""}${group(whole)}${fraction ? `.${fraction}` : ""}`;
}
/** A decimal string as a JS number, for charts (exact enough to draw). */
export const approx = (value, decimals = 0) => Number(value) / 10 ** decimals;
const missing = (value) => value === null || value === undefined;
export const kwh = (wh) => (missing(wh) ? "–" : scaled(wh, 3));
export const money = (units) => (missing(units) ? "–" : `${scaled(units, 6, { minFraction: 2 })} gUSD`);
export const pricePerKwh = (units) => `${scaled(units, 6, { minFraction: 2 })} gUSD/kWh`;
export const short = (hex) => (hex ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : "–");

const pad = (n) => String(n).padStart(2, "0");
export function time(seconds) {
  if (!seconds) return "–";
  const d = new Date(seconds * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}
export const hhmm = (seconds) => { const d = new Date(seconds * 1000); return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`; };

/** An element with attributes and children (strings become text nodes: no HTML injection). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function rows(table, items, render, empty) {
  const body = table.tBodies[0];
  const columns = table.tHead.rows[0].cells.length;
  body.replaceChildren(...(items.length ? items.map(render)
    : [h("tr", {}, h("td", { colspan: columns, class: "muted" }, empty))]));
}

export const status = (value) => h("span", { class: `status status-${value}` }, value.replaceAll("_", " "));

export const $ = (selector) => document.querySelector(selector);
