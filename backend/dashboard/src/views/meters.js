// Meters: the neighbourhood aggregate for everybody; my own generation vs consumption when signed in,
// with the unverified part (readings not signed by the approved meter key: shown, never paid) apart.
import { api, data, mine, signedIn } from "../api.js";
import { COLORS, draw } from "../charts.js";
import { $, approx, hhmm, time } from "../format.js";

export async function refreshNeighbourhood() {
  const periods = await data(api.GET("/v1/public/energy/periods", { params: { query: { limit: 48 } } }));
  draw($("#neighbourhood-chart"), {
    data: {
      labels: periods.map((p) => `${time(p.delivery_start).slice(5, 10)} ${hhmm(p.delivery_start)}`),
      datasets: [
        { type: "bar", label: "Contracted kWh", data: periods.map((p) => approx(p.contracted_wh, 3)), backgroundColor: "#93c5fd" },
        { type: "bar", label: "Delivered kWh", data: periods.map((p) => approx(p.delivered_wh, 3)), backgroundColor: COLORS.green },
      ],
    },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: "kWh" } } } },
  });
}

export function setupMeterForm() {
  const form = $("#meter-form");
  form.hidden = !signedIn();
  form.onsubmit = async (event) => {
    event.preventDefault();
    const meterId = $("#meter-id").value.trim();
    const message = $("#meter-message");
    message.textContent = "Loading…";
    try {
      const params = { query: { meterId, aggregation: /** @type {const} */ ("hourly") } };
      const [generation, consumption] = await Promise.all([
        data(mine.GET("/v1/energy/generation", { params })), data(mine.GET("/v1/energy/consumption", { params }))]);
      const meter = await data(mine.GET("/v1/meters/{meter}", { params: { path: { meter: meterId } } }));
      const hours = [...new Set([...generation.points, ...consumption.points].map((p) => p.start))].sort();
      const byStart = (series, wh = (p) => p.verified_wh) => new Map(series.points.map((p) => [p.start, wh(p) / 1000]));
      const g = byStart(generation), c = byStart(consumption);
      const unverified = byStart(generation, (p) => p.wh - p.verified_wh);
      $("#meter-chart-box").hidden = false;
      draw($("#meter-chart"), {
        data: {
          labels: hours.map((s) => s.slice(11, 16)),
          datasets: [
            { type: "line", label: "Generation kWh", data: hours.map((s) => g.get(s) ?? 0), borderColor: COLORS.green, backgroundColor: COLORS.green },
            { type: "line", label: "Consumption kWh", data: hours.map((s) => c.get(s) ?? 0), borderColor: COLORS.red, backgroundColor: COLORS.red },
            { type: "line", label: "Unverified generation kWh (not paid)", data: hours.map((s) => unverified.get(s) ?? 0), borderColor: "#9ca3af", backgroundColor: "#9ca3af", borderDash: [6, 4] },
          ],
        },
      });
      const key = meter.signing_key ? `, signing key ${meter.signing_key}` : ", no signing key";
      message.textContent = `${hours.length} hours for meter ${meterId}: ${meter.status}${key}.`;
    } catch (error) {
      message.textContent = error.status === 404 && error.problem?.type?.endsWith("/not-found") && !error.problem.detail
        ? "Meter data is not available on this server." : error.message;
    }
  };
}
