// Demand response (signed in): the event timeline, baseline vs actual load per participant of
// the selected event, and the incentives and penalties settled on chain (DemandResponse).
import { mine, data, signedIn } from "../api.js";
import { COLORS, draw } from "../charts.js";
import { $, h, hhmm, kwh, money, rows, short, status, time } from "../format.js";

let selected = null; // the event whose results are shown

export async function refreshDr(me) {
  const section = $("#dr-mine");
  section.hidden = !(signedIn() && me);
  if (section.hidden) return;
  const events = await data(mine.GET("/v1/dr/events"));
  const now = Date.now() / 1000;
  // results are shown to the event's operator and its participants only
  const involved = (e) => e.created_by === me.id || e.participants.some((p) => p.account_id === me.id);
  rows($("#dr-events"), [...events].reverse(), (e) => h("tr", { dataset: { eventId: e.id } },
    h("td", {}, time(e.start)),
    h("td", {}, `${hhmm(e.start)}–${hhmm(e.end)}`),
    h("td", {}, `${e.signal_type} ${e.signal_value}`),
    h("td", {}, String(e.participants.filter((p) => !p.opted_out_at).length)),
    h("td", {}, status(e.cancelled_at ? "cancelled" : e.end <= now ? "ended" : e.start <= now ? "active" : "called")),
    h("td", {}, involved(e) ? h("button", { type: "button", class: "secondary",
      "aria-label": `Results of the event at ${time(e.start)}`, dataset: { show: e.id } }, "Results") : "–")),
  "No demand-response events.");
  $("#dr-events").onclick = (event) => {
    const button = event.target instanceof HTMLElement ? event.target.closest("button[data-show]") : null;
    if (!(button instanceof HTMLElement)) return;
    selected = button.dataset.show;
    refreshResults().catch(report);
  };
  const latest = events.filter(involved).at(-1);
  if (!selected && latest) selected = latest.id;
  await refreshResults().catch(report);
}

function report(error) {
  $("#dr-results-message").textContent = error.message;
}

async function refreshResults() {
  const box = $("#dr-results");
  box.hidden = !selected;
  if (!selected) return;
  $("#dr-results-message").textContent = "";
  const [performance, settlement] = await Promise.all([
    data(mine.GET("/v1/dr/events/{event_id}/performance", { params: { path: { event_id: selected } } })),
    data(mine.GET("/v1/dr/events/{event_id}/settlement", { params: { path: { event_id: selected } } })),
  ]);
  box.dataset.eventId = selected;
  const picker = $("#dr-participant");
  const evaluated = performance.participants.filter((p) => p.intervals.length);
  const keep = picker.value;
  picker.replaceChildren(...evaluated.map((p) => h("option", { value: p.meter_id }, short(p.meter_id))));
  if (evaluated.some((p) => p.meter_id === keep)) picker.value = keep;
  picker.onchange = () => chart(evaluated);
  chart(evaluated);
  $("#dr-state").textContent = `Settlement: ${settlement.state.replaceAll("_", " ")}`;
  const byAccount = new Map(performance.participants.map((p) => [p.account_id, p]));
  rows($("#dr-payouts"), settlement.participants, (s) => h("tr", { dataset: { account: s.address } },
    h("td", {}, short(s.address)),
    h("td", {}, kwh(s.credited_wh)),
    h("td", {}, kwh(s.shortfall_wh)),
    h("td", {}, money(s.incentive)),
    h("td", {}, money(s.penalty)),
    h("td", {}, status(s.status), s.data_missing ? h("span", { class: "muted" }, " (missing data)") : null),
    h("td", { class: "tx" }, s.tx_hash ? short(s.tx_hash) : "–")),
  byAccount.size ? "Not settled yet: the event's verified readings are still coming in." : "No participants.");
}

function chart(evaluated) {
  const empty = $("#dr-chart-empty");
  const chosen = evaluated.find((p) => p.meter_id === $("#dr-participant").value) || evaluated[0];
  empty.hidden = Boolean(chosen);
  if (!chosen) return;
  draw($("#dr-chart"), {
    type: "line",
    data: {
      labels: chosen.intervals.map((i) => hhmm(i.interval_start)),
      datasets: [
        { label: "Baseline kWh", data: chosen.intervals.map((i) => i.baseline_wh / 1000), borderColor: COLORS.grey,
          borderDash: [6, 4], pointRadius: 2 },
        { label: "Actual kWh (verified)", data: chosen.intervals.map((i) => (i.metered_wh === null ? null : i.metered_wh / 1000)),
          borderColor: COLORS.blue, pointRadius: 3 },
        { label: "Committed reduction kWh", data: chosen.intervals.map((i) => i.committed_wh / 1000),
          borderColor: COLORS.amber, pointRadius: 0 },
      ],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "kWh per 15 min" } } } },
  });
  $("#dr-chart-caption").textContent = `Meter ${short(chosen.meter_id)}: credited ${kwh(chosen.credited_wh)} kWh, `
    + `short ${kwh(chosen.shortfall_wh)} kWh, incentive ${money(chosen.incentive)}, penalty ${money(chosen.penalty)}`;
}
