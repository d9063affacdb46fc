// Live updates over /v1/ws: {"action": "subscribe", "channels": [...]} → {channel, timestamp, payload}.
import { $ } from "./format.js";

const BASE = ["trades", "settlements", "recs"];

export function connectLive(onMessage) {
  let socket;
  let market = null;
  let delay = 500;
  const label = $("#live-status");

  const channels = () => (market ? [...BASE, `trading.market.${market}`] : BASE);
  const open = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/v1/ws`);
    socket.onopen = () => {
      delay = 500;
      socket.send(JSON.stringify({ action: "subscribe", channels: channels() }));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.channel === "system") {
        label.textContent = message.payload.error ? `live: ${message.payload.error}` : "live: connected";
        return;
      }
      onMessage(message);
    };
    socket.onclose = () => {
      label.textContent = "live: reconnecting…";
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  };
  open();
  return {
    follow(marketId) {
      const previous = market;
      market = marketId || null;
      if (socket?.readyState !== WebSocket.OPEN) return;
      if (previous) socket.send(JSON.stringify({ action: "unsubscribe", channels: [`trading.market.${previous}`] }));
      if (market) socket.send(JSON.stringify({ action: "subscribe", channels: [`trading.market.${market}`] }));
    },
  };
}
