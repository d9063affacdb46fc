// Chart.js, bundled: only the pieces the dashboard uses are registered.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip);
Chart.defaults.color = "#1f2937";
Chart.defaults.font.family = "system-ui, sans-serif";

const charts = new Map();

/** Create or update the chart on `canvas` (datasets keep their order). */
export function draw(canvas, config) {
  const existing = charts.get(canvas);
  if (existing) {
    existing.data = config.data;
    existing.update("none");
    return existing;
  }
  const chart = new Chart(canvas, {
    ...config,
    options: { responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false }, ...config.options },
  });
  charts.set(canvas, chart);
  return chart;
}

export const COLORS = { blue: "#1d4ed8", green: "#047857", amber: "#b45309", grey: "#6b7280", red: "#b91c1c" };
