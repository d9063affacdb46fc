// Virtual power plants: members (list with location), SoC and output as reported, the latest
// schedule vs what the dispatchable members did, the forecast vs the members' reported output.
// Signed-in only (VPP reads need an account); refreshed with the rest (polled and on live pushes).
import { data, mine, signedIn } from "../api.js";
import { COLORS, draw } from "../charts.js";
import { $, h, hhmm, rows } from "../format.js";

const watts = (w) => (w === null || w === undefined ? "–" : `${(w / 1000).toFixed(2)} kW`);
const soc = (r) => (r.soc === null || r.soc === undefined ? "–" : `${Math.round(r.soc * 100)} %`);
const place = (l) => (l ? `${l.lat.toFixed(4)}, ${l.lng.toFixed(4)}` : "–");
const kwhOrNull = (wh) => (wh === null || wh === undefined ? null : wh / 1000);

let chosen = null;

export async function refreshVpp(me) {
  const section = $("#vpp");
  if (!(signedIn() && me)) {
    section.hidden = true;
    return;
  }
  const vpps = await data(mine.GET("/v1/vpp"));
  section.hidden = vpps.length === 0;
  if (!vpps.length) return;
  const select = $("#vpp-select");
  if (!vpps.some((v) => v.vppId === chosen)) chosen = vpps[0].vppId;
  select.replaceChildren(...vpps.map((v) => h("option", { value: v.vppId, selected: v.vppId === chosen }, v.name)));
  select.onchange = () => { chosen = select.value; refreshVpp(me).catch((e) => console.error("vpp:", e)); };
  const vpp = vpps.find((v) => v.vppId === chosen);
  $("#vpp-summary").textContent =
    `${vpp.status} · ${vpp.resources.length} resources · ${watts(vpp.capacity)} rated · output now ${watts(vpp.aggregatedOutput)}`;
  rows($("#vpp-resources"), vpp.resources, (r) => h("tr", { dataset: { resourceId: r.id } },
    h("td", {}, r.name),
    h("td", {}, r.type.replaceAll("_", " ")),
    h("td", {}, watts(r.capacity)),
    h("td", {}, watts(r.current)),
    h("td", {}, soc(r)),
    h("td", {}, place(r.location))),
  "No member resources yet.");
  const timeline = await data(mine.GET("/v1/vpp/{vpp_id}/timeline", { params: { path: { vpp_id: chosen } } }));
  const labels = timeline.slots.map((s) => hhmm(Date.parse(s.start) / 1000));
  const line = (label, values, color, dashed) => ({
    type: "line", label, data: values, borderColor: color, backgroundColor: color, spanGaps: false, pointRadius: 0,
    borderDash: dashed ? [6, 4] : undefined,
  });
  const kwhAxis = { options: { scales: { y: { title: { display: true, text: "kWh per 15 min" } } } } };
  draw($("#vpp-forecast-chart"), {
    data: { labels, datasets: [
      line("Forecast", timeline.slots.map((s) => kwhOrNull(s.forecastWh)), COLORS.blue, true),
      line("Reported output", timeline.slots.map((s) => kwhOrNull(s.actualWh)), COLORS.green, false),
    ] },
    ...kwhAxis,
  });
  draw($("#vpp-schedule-chart"), {
    data: { labels, datasets: [
      line("Schedule", timeline.slots.map((s) => kwhOrNull(s.scheduledWh)), COLORS.amber, true),
      line("Dispatched (reported)", timeline.slots.map((s) => kwhOrNull(s.dispatchedWh)), COLORS.red, false),
    ] },
    ...kwhAxis,
  });
  const count = (key) => String(timeline.slots.filter((s) => s[key] !== null && s[key] !== undefined).length);
  Object.assign($("#vpp-forecast-chart").dataset, { forecast: count("forecastWh"), reported: count("actualWh") });
  Object.assign($("#vpp-schedule-chart").dataset, { scheduled: count("scheduledWh"), dispatched: count("dispatchedWh") });
  $("#vpp-forecast-empty").hidden = Boolean(timeline.forecastId);
  $("#vpp-schedule-empty").hidden = Boolean(timeline.scheduleId);
}
