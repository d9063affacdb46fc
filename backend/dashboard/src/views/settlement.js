// Settlement: contracted vs metered vs delivered per trade, payouts, penalties, status.
import { api, data, mine, signedIn } from "../api.js";
import { $, h, kwh, money, rows, short, status, time } from "../format.js";
import { txLabel, write } from "../transactions.js";

export async function refreshSettlement(me, wallet) {
  const items = await data(api.GET("/v1/public/settlements", { params: { query: { limit: 50 } } }));
  rows($("#settlement-table"), items, (s) => h("tr", { dataset: { tradeId: s.trade_id } },
    h("td", {}, `#${s.trade_id}`),
    h("td", {}, time(s.delivery_start)),
    h("td", {}, kwh(s.contracted_wh)),
    h("td", {}, kwh(s.metered_wh)),
    h("td", {}, kwh(s.delivered_wh)),
    h("td", {}, money(s.payout)),
    h("td", {}, money(s.penalty)),
    h("td", {}, status(s.status), s.settled_tx ? h("span", { class: "muted tx" }, ` ${short(s.settled_tx)}`) : null)),
  "No energy trades yet.");

  const personal = $("#my-settlement");
  personal.hidden = !(signedIn() && me);
  if (personal.hidden) return;
  const [transfers, balance] = await Promise.all([
    data(mine.GET("/v1/energy/transfers", { params: { query: { limit: 50 } } })), data(mine.GET("/v1/energy/balance"))]);
  $("#my-balance").textContent = `Token balance ${money(balance.token_balance)} · in escrow ${money(balance.escrowed)} · withdrawable ${money(balance.withdrawable)}`;
  setupWithdraw(me, wallet, BigInt(balance.withdrawable) > 0n);
  const address = me.address?.toLowerCase();
  rows($("#my-transfers"), transfers.items, (t) => h("tr", {},
    h("td", {}, `#${t.id}`),
    h("td", {}, t.seller === address ? "seller" : "buyer"),
    h("td", {}, kwh(t.contracted_wh)),
    h("td", {}, kwh(t.delivered_wh)),
    h("td", {}, money(t.escrow)),
    h("td", {}, status(t.status))),
  "You have no energy trades.");
  await refreshReconciliations();
}

async function refreshReconciliations() {
  // Reconciliation records come with the metering service (issue 6); absent before it is deployed.
  const box = $("#reconciliations");
  try {
    const records = await data(mine.GET("/v1/settlement/reconciliations", { params: { query: { limit: 20 } } }));
    box.replaceChildren(h("h3", {}, "Reconciliation (metering)"),
      h("pre", { class: "scroll code", tabindex: 0 }, JSON.stringify(records, null, 2)));
  } catch (error) {
    box.replaceChildren(error.status === 404 ? h("p", { class: "muted" }, "Reconciliation records are not available on this server.")
      : h("p", { class: "error" }, error.message));
  }
}

// Withdraw: the market pays by pull; custodial accounts withdraw through the API, which signs,
// a wallet sends `withdraw()` itself.
function setupWithdraw(me, wallet, hasCredit) {
  const button = $("#withdraw");
  const message = $("#withdraw-message");
  if (button.dataset.busy) return;
  button.disabled = !hasCredit;
  button.onclick = async () => {
    button.dataset.busy = "1";
    button.disabled = true;
    message.textContent = "Withdrawing…";
    try {
      const done = await write(() => data(mine.POST("/v1/energy/withdrawals")), me, wallet, (text) => { message.textContent = text; });
      message.textContent = done.api
        ? `Withdrew ${money(done.api.amount)} to ${short(done.api.address)} (tx ${short(done.api.tx_hash)}).`
        : `Withdrew from your wallet (${txLabel(done)}).`;
      await refreshSettlement(me, wallet);
    } catch (error) {
      message.textContent = error.message;
      button.disabled = false;
    } finally {
      delete button.dataset.busy;
    }
  };
}
