// One handler per event of every contract: the decoded event as a chain_events row, plus the
// certificate and holdings rows our indexer derives from the registry's events.
import { readFileSync } from "node:fs";
import { ponder } from "ponder:registry";
import { certificates, chainEvents, holdings } from "ponder:schema";

const ZERO = "0x0000000000000000000000000000000000000000";
const deployment = JSON.parse(readFileSync(process.env.GRIDLEDGER_PONDER_DEPLOYMENT!, "utf8"));
const plain = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v)));

for (const [name, contract] of Object.entries(deployment.contracts) as [string, any][]) {
  for (const item of contract.abi) {
    if (item.type !== "event") continue;
    (ponder as any).on(`${name}:${item.name}`, async ({ event, context }: any) => {
      const log = event.log;
      await context.db.insert(chainEvents).values({
        id: event.id,
        blockNumber: event.block.number,
        blockHash: event.block.hash,
        txHash: event.transaction.hash,
        logIndex: log.logIndex,
        contract: name,
        address: log.address,
        event: item.name,
        args: plain(event.args),
      });
      if (name !== "RECRegistry") return;
      const a = event.args;
      if (item.name === "CertificateIssued") {
        await context.db.insert(certificates).values({
          certificateId: a.certId,
          deviceId: BigInt(a.deviceId),
          periodStart: BigInt(a.periodStart),
          periodEnd: BigInt(a.periodEnd),
          volumeWh: BigInt(a.volumeWh),
          issuedTo: a.to,
          issuedTx: event.transaction.hash,
          evidenceRoot: a.evidenceRoot,
          blockNumber: event.block.number,
        });
      } else if (item.name === "TransferSingle" || item.name === "TransferBatch") {
        const ids: bigint[] = item.name === "TransferSingle" ? [a.id] : a.ids;
        const values: bigint[] = item.name === "TransferSingle" ? [a.value] : a.values;
        const blockNumber = event.block.number;
        if (a.from === ZERO) {
          await context.db.insert(holdings).values(
            ids.map((id, i) => ({ certificateId: id, account: a.to, balanceWh: values[i]!, blockNumber })),
          );
          return;
        }
        for (const [i, id] of ids.entries()) {
          const value = values[i]!;
          await context.db
            .update(holdings, { certificateId: id, account: a.from })
            .set((row: any) => ({ balanceWh: row.balanceWh - value, blockNumber }));
          if (a.to !== ZERO) {
            await context.db
              .insert(holdings)
              .values({ certificateId: id, account: a.to, balanceWh: value, blockNumber })
              .onConflictDoUpdate((row: any) => ({ balanceWh: row.balanceWh + value, blockNumber }));
          }
        }
      }
    });
  }
}
