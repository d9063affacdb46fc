// Trading panel: approve gUSD, place a bid or an offer, see my orders, cancel. Custodial (email)
// accounts post the terms and the API signs; wallet accounts sign the served EIP-712 document
// and send the approval from their wallet.
import { api, data, mine } from "../api.js";
import { $, h, kwh, pricePerKwh, rows, short, status, time } from "../format.js";
import { txLabel, write } from "../transactions.js";
import { signTypedData } from "../wallet.js";
import { marketLabel } from "./market.js";

const TOKEN_DECIMALS = 6;
const CANCELLABLE = new Set(["open", "partially_filled"]);

/** "0.12" gUSD → "120000" base units (exact: string arithmetic, never a float). */
export function baseUnits(text, decimals = TOKEN_DECIMALS) {
  const match = /^\s*(\d+)(?:\.(\d*))?\s*$/.exec(text);
  if (!match || (match[2] || "").length > decimals) throw new Error(`Price: a number with at most ${decimals} decimals`);
  const units = BigInt(match[1] + (match[2] || "").padEnd(decimals, "0"));
  if (units <= 0n) throw new Error("Price must be above zero");
  return units.toString();
}

async function loadPeriods() {
  const select = $("#order-market");
  const markets = (await data(api.GET("/v1/trading/markets", { params: { query: { hours: 6 } } }))).filter((m) => m.product === "energy");
  const signature = markets.map((m) => m.id).join(",");
  if (select.dataset.signature === signature) return; // unchanged: keep the choice
  select.dataset.signature = signature;
  const chosen = select.value;
  select.replaceChildren(...markets.map((m) => h("option", { value: m.delivery_start }, marketLabel(m.id, m))));
  if (markets.some((m) => String(m.delivery_start) === chosen)) select.value = chosen;
}

function orderRow(order) {
  // an order the matcher withdrew may still trade on chain: custodial ones are cancelled there,
  // wallets get the cancelOrder call to send
  const cancellable = CANCELLABLE.has(order.status)
    || (order.status === "withdrawn" && order.withdrawn_reason && !order.cancel_tx);
  const cancel = cancellable
    ? h("button", { type: "button", class: "small", "aria-label": `Cancel order ${short(order.id)}` }, "Cancel")
    : null;
  if (cancel) cancel.onclick = () => cancelOrder(order, cancel);
  return h("tr", { dataset: { orderId: order.id } },
    h("td", { class: "tx" }, short(order.id)),
    h("td", {}, order.side === "buy" ? "bid" : "offer"),
    h("td", {}, time(order.delivery_start)),
    h("td", {}, kwh(order.quantity_wh)),
    h("td", {}, kwh(order.filled_wh)),
    h("td", {}, pricePerKwh(order.price)),
    h("td", {}, status(order.status), withdrawnReason(order)),
    h("td", {}, cancel));
}

/** Why the matcher withdrew the order (the maker's only clue to fix allowance, meter, ...). */
function withdrawnReason(order) {
  if (!order.withdrawn_reason) return null;
  return h("small", { class: "muted withdrawn-reason" }, ` ${order.withdrawn_reason}`);
}

async function cancelOrder(order, button) {
  const message = $("#order-message");
  button.disabled = true;
  try {
    const done = await data(mine.DELETE("/v1/trading/orders/{order_id}", { params: { path: { order_id: order.id } } }));
    const call = done.cancel_on_chain;
    message.textContent = `Order ${short(order.id)} ${done.status}.`
      + (done.detail ? ` ${done.detail}` : "")
      + (call && done.status === "withdrawn" ? ` Send ${call.function} to ${call.to} from your wallet to stop takers filling the rest on chain.` : "");
    await refreshOrders();
  } catch (error) {
    message.textContent = error.message;
    button.disabled = false;
  }
}

async function refreshOrders() {
  const page = await data(mine.GET("/v1/trading/orders", { params: { query: { limit: 50 } } }));
  rows($("#my-orders"), page.items, orderRow, "You have no orders.");
}

function terms() {
  return {
    side: $("#order-side").value,
    product: /** @type {const} */ ("energy"),
    delivery_start: $("#order-market").value,
    quantity_wh: $("#order-quantity").value.trim(),
    price: baseUnits($("#order-price").value),
  };
}

/** Place the form's order: a wallet signs the served document, a custodial account does not. */
async function placeOrder(me, wallet) {
  const wanted = terms();
  let body = wanted;
  if (me.kind === "wallet") {
    const provider = await wallet.provider();
    const served = await data(mine.GET("/v1/trading/order-typed-data", { params: { query: wanted } }));
    const document = served.typed_data;
    const signature = await signTypedData(provider, me.address, document);
    const { nonce, salt, expiry } = /** @type {any} */ (document.message);
    body = { ...wanted, nonce, salt, expiry, signature };
  }
  return data(mine.POST("/v1/trading/orders", { body }));
}

/** Let the market move my gUSD (bids) and certificates (REC offers): the API approves for a
 * custodial account, a wallet sends `approve` and `setApprovalForAll` itself. */
function setupApproval(me, wallet) {
  const button = $("#approve-market");
  const message = $("#approve-message");
  button.onclick = async () => {
    button.disabled = true;
    message.textContent = "Approving…";
    try {
      const done = await write(() => data(mine.POST("/v1/trading/approvals")), me, wallet, (text) => { message.textContent = text; });
      message.textContent = `The market may now move your gUSD and certificates (${txLabel(done)}).`;
    } catch (error) {
      message.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  };
}

/** `wallet.provider()` resolves to the connected EIP-1193 provider (connecting if needed). */
export async function refreshTrading(me, wallet) {
  const panel = $("#trading");
  panel.hidden = !me;
  if (!me) return;
  setupApproval(me, wallet);
  const form = $("#order-form");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const message = $("#order-message");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    message.textContent = me.kind === "wallet" ? "Sign the order in your wallet…" : "Placing…";
    try {
      const placed = await placeOrder(me, wallet);
      message.textContent = `Order ${short(placed.id)} ${placed.status}.`;
      await refreshOrders();
    } catch (error) {
      message.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  };
  await Promise.all([loadPeriods(), refreshOrders()]);
}
