import { describe, expect, it } from "vitest";
import { WebhookEventStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";
import { createTenant, newWebhookEvent } from "./support/rows.ts";

const database = useTestDatabase();
const events = () => new WebhookEventStore(database().pool);

/** Sets an event's next attempt `ms` in the past (negative: in the future) and its status. */
async function due(id: string, ms: number, status = "pending"): Promise<void> {
  await database().pool.query(
    `update webhook_events set "nextAttemptAt" = now() - make_interval(secs => $2::double precision / 1000), status = $3 where id = $1`,
    [id, ms, status],
  );
}

describe("WebhookEventStore.overduePending", () => {
  it("returns pending events overdue by more than the margin, most overdue first", async () => {
    const tenant = await createTenant(database());
    const [late, later, recent, future, delivered, failed] = Array.from({ length: 6 }, () =>
      newWebhookEvent(tenant, {}),
    );
    await events().insert([late!, later!, recent!, future!, delivered!, failed!]);
    await due(late!.id, 60_000);
    await due(later!.id, 120_000);
    await due(recent!.id, 1_000);
    await due(future!.id, -60_000);
    await due(delivered!.id, 120_000, "delivered");
    await due(failed!.id, 120_000, "failed");

    const mine = (await events().overduePending(30_000)).filter((e) => e.tenantId === tenant);
    expect(mine).toEqual([
      { id: later!.id, tenantId: tenant },
      { id: late!.id, tenantId: tenant },
    ]);
  });
});

describe("WebhookEventStore.tenantOf", () => {
  it("names an event's tenant, and nothing for an event that is gone", async () => {
    const tenant = await createTenant(database());
    const event = newWebhookEvent(tenant, {});
    await events().insert([event]);
    expect(await events().tenantOf(event.id)).toBe(tenant);
    await database().pool.query(`delete from webhook_events where id = $1`, [event.id]);
    expect(await events().tenantOf(event.id)).toBeUndefined();
  });
});
