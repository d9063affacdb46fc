// Order book and recent trades per market, and the price & volume chart.
import { api, data } from "../api.js";
import { COLORS, draw } from "../charts.js";
import { $, approx, h, hhmm, kwh, pricePerKwh, rows, short, status, time } from "../format.js";

const ALL = "";
let selected = ALL;
let known = new Map();

export function marketLabel(id, market) {
  if (id.startsWith("energy-")) {
    const start = Number(id.slice(7));
    return `Energy ${time(start).slice(0, 10)} ${hhmm(start)}–${hhmm(start + 900)} UTC`;
  }
  const detail = market?.technology ? ` ${market.technology} ${market.grid_area}` : "";
  return `REC certificate #${id.slice(4)}${detail}`;
}

export const selectedMarket = () => selected;

export async function loadMarkets(onChange) {
  const [markets, recent] = await Promise.all([data(api.GET("/v1/trading/markets", { params: { query: { hours: 6 } } })),
    data(api.GET("/v1/trading/trades", { params: { query: { limit: 50 } } })),
  ]);
  known = new Map(markets.map((m) => [m.id, m]));
  for (const trade of recent.items) if (!known.has(trade.market_id)) known.set(trade.market_id, { id: trade.market_id, closed: true });
  const select = $("#market-select");
  select.onchange = () => { selected = select.value; onChange(selected); refreshMarket(); };
  const signature = [...known.keys()].join(",");
  if (select.dataset.signature === signature) return; // unchanged: keep focus and scroll position
  select.dataset.signature = signature;
  const options = [h("option", { value: ALL }, "All markets (trades)")];
  for (const [id, market] of known) {
    options.push(h("option", { value: id }, marketLabel(id, market) + (market.closed ? " (closed)" : "")));
  }
  select.replaceChildren(...options);
  select.value = known.has(selected) ? selected : ALL;
}

function bookSide(title, levels, kind) {
  return h("table", { class: `book-${kind}` },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Price"), h("th", { scope: "col" }, "kWh"), h("th", { scope: "col" }, "Orders"))),
    h("tbody", {}, levels.length
      ? levels.map((l) => h("tr", {}, h("td", {}, pricePerKwh(l.price)), h("td", {}, kwh(l.quantity_wh)), h("td", {}, l.orders)))
      : h("tr", {}, h("td", { colspan: 3, class: "muted" }, `no ${kind}`))));
}

export async function refreshMarket() {
  const box = $("#orderbook");
  const tradesRequest = data(api.GET("/v1/trading/trades", { params: { query: { market_id: selected || undefined, limit: 25 } } }));
  if (selected) {
    const book = await data(api.GET("/v1/trading/orderbook", { params: { query: { market_id: selected, depth: 15 } } }));
    box.replaceChildren(bookSide("Bids (buy)", book.bids, "bids"), bookSide("Asks (sell)", book.asks, "asks"));
  } else {
    box.replaceChildren(h("p", { class: "muted" }, "Choose a market to see its order book."));
  }
  const trades = await tradesRequest;
  rows($("#trades-table"), trades.items, (t) => h("tr", { dataset: { tradeId: t.trade_id } },
    h("td", {}, `#${t.trade_id}`),
    h("td", {}, marketLabel(t.market_id, known.get(t.market_id))),
    h("td", {}, kwh(t.quantity_wh)),
    h("td", {}, pricePerKwh(t.price)),
    h("td", {}, status(t.status)),
    h("td", {}, h("time", { datetime: new Date(t.timestamp * 1000).toISOString(), title: short(t.tx_hash) }, time(t.timestamp)))),
  "No trades yet.");
}

export async function refreshPrices() {
  const bars = (await data(api.GET("/v1/trading/prices"))).slice(-48);
  $("#prices-empty").hidden = bars.length > 0;
  draw($("#price-chart"), {
    data: {
      labels: bars.map((b) => `${time(b.delivery_start).slice(5, 10)} ${hhmm(b.delivery_start)}`),
      datasets: [
        { type: "line", label: "Close (gUSD/kWh)", data: bars.map((b) => approx(b.close, 6)), borderColor: COLORS.blue,
          backgroundColor: COLORS.blue, yAxisID: "price" },
        { type: "bar", label: "Volume (kWh)", data: bars.map((b) => approx(b.volume_wh, 3)), backgroundColor: "#93c5fd",
          yAxisID: "volume" },
      ],
    },
    options: { scales: {
      price: { position: "left", title: { display: true, text: "gUSD/kWh" } },
      volume: { position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "kWh" } },
    } },
  });
}
