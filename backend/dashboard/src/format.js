// Formatting and tiny DOM helpers shared by the views.
export const kwh = (wh) => (wh === null || wh === undefined ? "–" : (wh / 1000).toLocaleString("en", { maximumFractionDigits: 3 }));
export const money = (units) => (units === null || units === undefined ? "–" : `${(units / 1e6).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 6 })} gUSD`);
export const pricePerKwh = (units) => `${(units / 1e6).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 6 })} gUSD/kWh`;
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
