// REC registry: totals, certificates issued per hour, claims with their proofs, my devices and
// holdings, and transferring or retiring a holding (from the wallet, or signed by the API).
import { api, data, mine, signedIn } from "../api.js";
import { COLORS, draw } from "../charts.js";
import { $, approx, h, hhmm, kwh, rows, scaled, short, time } from "../format.js";
import { txLabel, write } from "../transactions.js";

const proofs = new Map(); // claim id → proof (immutable once indexed)

async function proofOf(claim) {
  if (!proofs.has(claim.claim_id)) proofs.set(claim.claim_id, await data(api.GET("/v1/recs/claims/{claim_id}/proof", { params: { path: { claim_id: claim.claim_id } } })));
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

export async function refreshRecs(summary, me, wallet) {
  const r = summary.registry;
  const approved = r.devices.approved ?? 0;
  $("#registry-summary").replaceChildren(
    h("div", {}, h("dt", {}, "Devices approved"), h("dd", {}, `${approved} (${scaled(r.capacity_w, 3)} kW)`)),
    h("div", {}, h("dt", {}, "Certificates"), h("dd", {}, r.certificates.toLocaleString("en"))),
    h("div", {}, h("dt", {}, "Issued"), h("dd", {}, `${kwh(r.issued_wh)} kWh`)),
    h("div", {}, h("dt", {}, "Retired"), h("dd", {}, `${kwh(r.claimed_wh)} kWh in ${r.claims} claims`)));

  const [hours, claims] = await Promise.all([
    data(api.GET("/v1/public/recs/issuance", { params: { query: { limit: 48 } } })),
    data(api.GET("/v1/public/recs/claims", { params: { query: { limit: 20 } } }))]);
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

  const personal = $("#my-recs");
  personal.hidden = !(signedIn() && me);
  if (personal.hidden) return;
  const [devices, holdings] = await Promise.all([
    data(mine.GET("/v1/recs/devices", { params: { query: { owner: me.address } } })),
    data(mine.GET("/v1/recs/certificates", { params: { query: { holder: me.address, limit: 50 } } }))]);
  $("#my-devices").replaceChildren(...(devices.items.length
    ? devices.items.map((d) => h("li", {}, `Device #${d.device_id}: ${d.technology}, ${scaled(d.capacity_w, 3)} kW, ${d.grid_area}, ${d.status}`))
    : [h("li", { class: "muted" }, "No devices registered.")]));
  setupCertificateForm(holdings.items, me, wallet);
  rows($("#holdings-table"), holdings.items, (c) => h("tr", { dataset: { certificateId: c.certificate_id } },
    h("td", {}, `#${c.certificate_id}`), h("td", {}, c.technology), h("td", {}, time(c.period_start)),
    h("td", {}, kwh(c.volume_wh)), h("td", {}, kwh(c.claimed_wh))),
  "You hold no certificates.");
}

function wholeWh(text) {
  if (!/^\s*[1-9]\d*\s*$/.test(text)) throw new Error("Amount: a whole number of Wh above zero");
  return text.trim();
}

/** Transfer or retire Wh of one of my certificates; the claim's consumption period is the
 * certificate's hour. */
function setupCertificateForm(holdings, me, wallet) {
  const form = $("#cert-form");
  const select = $("#cert-id");
  const message = $("#cert-message");
  form.hidden = !holdings.length;
  const ids = holdings.map((c) => String(c.certificate_id));
  if (select.dataset.signature !== ids.join(",")) {
    const chosen = select.value;
    select.dataset.signature = ids.join(",");
    select.replaceChildren(...holdings.map((c) => h("option", { value: c.certificate_id }, `#${c.certificate_id} ${c.technology} ${time(c.period_start)}`)));
    if (ids.includes(chosen)) select.value = chosen;
  }
  const run = async (button, action) => {
    button.disabled = true;
    try {
      const certificate = holdings.find((c) => String(c.certificate_id) === select.value);
      const path = { certificate_id: certificate.certificate_id };
      const amount = wholeWh($("#cert-amount").value);
      const say = (text) => { message.textContent = text; };
      if (action === "transfer") {
        const to = $("#cert-to").value.trim();
        if (!/^0x[0-9a-fA-F]{40}$/.test(to)) throw new Error("Transfer to: an address (0x and 40 hex digits)");
        const done = await write(() => data(mine.POST("/v1/recs/certificates/{certificate_id}/transfer", { params: { path }, body: { to, amount_wh: amount } })), me, wallet, say);
        say(`Transferred ${kwh(amount)} kWh of certificate #${path.certificate_id} to ${short(to)} (${txLabel(done)}).`);
      } else {
        const beneficiary = $("#cert-beneficiary").value.trim();
        if (!beneficiary) throw new Error("Beneficiary: whom the energy is retired for");
        const body = { amount_wh: amount, beneficiary, consumption_start: certificate.period_start, consumption_end: certificate.period_end };
        const done = await write(() => data(mine.POST("/v1/recs/certificates/{certificate_id}/claim", { params: { path }, body })), me, wallet, say);
        say(`Retired ${kwh(amount)} kWh of certificate #${path.certificate_id} for ${beneficiary} (${txLabel(done)}).`);
      }
    } catch (error) {
      message.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  };
  $("#cert-transfer").onclick = () => run($("#cert-transfer"), "transfer");
  $("#cert-retire").onclick = () => run($("#cert-retire"), "retire");
  form.onsubmit = (event) => event.preventDefault();
}
