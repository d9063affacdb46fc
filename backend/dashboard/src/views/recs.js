// REC registry: totals, certificates issued per hour, claims with their proofs, my devices and holdings.
import { get, getMine, signedIn } from "../api.js";
import { COLORS, draw } from "../charts.js";
import { $, approx, h, hhmm, kwh, rows, scaled, short, time } from "../format.js";

const proofs = new Map(); // claim id → proof (immutable once indexed)

async function proofOf(claim) {
  if (!proofs.has(claim.claim_id)) proofs.set(claim.claim_id, await get(claim.proof));
  return proofs.get(claim.claim_id);
}

function proofCell(proof) {
  return h("details", { class: "proof" },
    h("summary", {}, `tx ${short(proof.tx_hash)} · block ${proof.block_number}`),
    h("dl", {},
      h("dt", {}, "Transaction"), h("dd", { class: "hash" }, proof.tx_hash),
      h("dt", {}, "Block"), h("dd", {}, `${proof.block_number} (${proof.block_hash ?? "hash pending"})`),
      h("dt", {}, "Log"), h("dd", {}, `#${proof.log_index} of ${proof.contract} on chain ${proof.chain_id}`),
      h("dt", {}, "Event"), h("dd", { class: "hash" }, proof.event_signature),
      h("dt", {}, "Holder"), h("dd", { class: "hash" }, proof.holder),
      h("dt", {}, "Consumption"), h("dd", {}, `${time(proof.consumption_start)} – ${time(proof.consumption_end)}`)));
}

export async function refreshRecs(summary, me) {
  const r = summary.registry;
  const approved = r.devices.approved ?? 0;
  $("#registry-summary").replaceChildren(
    h("div", {}, h("dt", {}, "Devices approved"), h("dd", {}, `${approved} (${scaled(r.capacity_w, 3)} kW)`)),
    h("div", {}, h("dt", {}, "Certificates"), h("dd", {}, r.certificates.toLocaleString("en"))),
    h("div", {}, h("dt", {}, "Issued"), h("dd", {}, `${kwh(r.issued_wh)} kWh`)),
    h("div", {}, h("dt", {}, "Retired"), h("dd", {}, `${kwh(r.claimed_wh)} kWh in ${r.claims} claims`)));

  const [hours, claims] = await Promise.all([get("/v1/public/recs/issuance?limit=48"), get("/v1/public/recs/claims?limit=20")]);
  draw($("#issuance-chart"), {
    data: {
      labels: hours.map((x) => `${time(x.hour).slice(5, 10)} ${hhmm(x.hour)}`),
      datasets: [
        { type: "bar", label: "Certificates", data: hours.map((x) => x.certificates), backgroundColor: COLORS.green, yAxisID: "count" },
        { type: "line", label: "kWh", data: hours.map((x) => approx(x.volume_wh, 3)), borderColor: COLORS.amber, backgroundColor: COLORS.amber, yAxisID: "kwh" },
      ],
    },
    options: { scales: { count: { position: "left", beginAtZero: true, ticks: { precision: 0 } },
      kwh: { position: "right", grid: { drawOnChartArea: false } } } },
  });
  const withProofs = await Promise.all(claims.map(async (c) => [c, await proofOf(c).catch(() => null)]));
  rows($("#claims-table"), withProofs, ([c, proof]) => h("tr", { dataset: { claimId: c.claim_id } },
    h("td", {}, `#${c.claim_id}`),
    h("td", {}, `#${c.certificate_id}${c.technology ? ` ${c.technology}` : ""}`),
    h("td", {}, kwh(c.amount_wh)),
    h("td", {}, c.beneficiary, c.purpose ? h("span", { class: "muted" }, ` (${c.purpose})`) : null),
    h("td", {}, proof ? proofCell(proof) : "proof pending")),
  "No certificates retired yet.");

  const mine = $("#my-recs");
  mine.hidden = !(signedIn() && me);
  if (mine.hidden) return;
  const [devices, holdings] = await Promise.all([
    getMine(`/v1/recs/devices?owner=${me.address}`), getMine(`/v1/recs/certificates?holder=${me.address}&limit=50`)]);
  $("#my-devices").replaceChildren(...(devices.items.length
    ? devices.items.map((d) => h("li", {}, `Device #${d.device_id}: ${d.technology}, ${scaled(d.capacity_w, 3)} kW, ${d.grid_area}, ${d.status}`))
    : [h("li", { class: "muted" }, "No devices registered.")]));
  rows($("#holdings-table"), holdings.items, (c) => h("tr", {},
    h("td", {}, `#${c.certificate_id}`), h("td", {}, c.technology), h("td", {}, time(c.period_start)),
    h("td", {}, kwh(c.volume_wh)), h("td", {}, kwh(c.claimed_wh))),
  "You hold no certificates.");
}
