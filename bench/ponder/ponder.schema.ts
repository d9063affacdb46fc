// Tables equivalent to ours for the benchmark chain's events: every event decoded
// (chain_events), certificates (CertificateIssued), holdings (TransferSingle/TransferBatch).
import { onchainTable, primaryKey } from "ponder";

export const chainEvents = onchainTable("chain_events", (t) => ({
  id: t.text().primaryKey(),
  blockNumber: t.bigint().notNull(),
  blockHash: t.hex().notNull(),
  txHash: t.hex().notNull(),
  logIndex: t.integer().notNull(),
  contract: t.text().notNull(),
  address: t.hex().notNull(),
  event: t.text().notNull(),
  args: t.json().notNull(),
}));

export const certificates = onchainTable("certificates", (t) => ({
  certificateId: t.bigint().primaryKey(),
  deviceId: t.bigint().notNull(),
  periodStart: t.bigint().notNull(),
  periodEnd: t.bigint().notNull(),
  volumeWh: t.bigint().notNull(),
  issuedTo: t.hex().notNull(),
  issuedTx: t.hex().notNull(),
  evidenceRoot: t.hex().notNull(),
  blockNumber: t.bigint().notNull(),
}));

export const holdings = onchainTable(
  "holdings",
  (t) => ({
    certificateId: t.bigint().notNull(),
    account: t.hex().notNull(),
    balanceWh: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.certificateId, table.account] }) }),
);
