import { describe, expect, it } from "vitest";
import { TenantStore } from "@inferline/db";
import { useTestDatabase } from "./support/test-database.ts";

const database = useTestDatabase();
const tenants = () => new TenantStore(database().pool, database().prisma);

describe("TenantStore settings (weight, maxQueued)", () => {
  it("a new tenant has weight 1 and no quota of its own; authenticate carries both", async () => {
    const { key, tenant } = await tenants().createKey("settings-new");
    expect(tenant).toMatchObject({ name: "settings-new", weight: 1, maxQueued: null });
    expect(await tenants().authenticate(key)).toEqual({
      id: tenant.id,
      name: "settings-new",
      weight: 1,
      maxQueued: null,
    });
  });

  it("updateSettings changes what it is given, keeps the rest, clears the quota with null; an unknown tenant is null", async () => {
    const { key } = await tenants().createKey("settings-set");
    expect(await tenants().updateSettings("settings-set", { weight: 3, maxQueued: 500 })).toMatchObject({
      weight: 3,
      maxQueued: 500,
    });
    expect(await tenants().updateSettings("settings-set", { maxQueued: 20 })).toMatchObject({
      weight: 3,
      maxQueued: 20,
    });
    expect(await tenants().authenticate(key)).toMatchObject({ weight: 3, maxQueued: 20 });
    expect(await tenants().updateSettings("settings-set", { maxQueued: null })).toMatchObject({
      weight: 3,
      maxQueued: null,
    });
    expect(await tenants().find("settings-set")).toMatchObject({ name: "settings-set", weight: 3, maxQueued: null });
    expect(await tenants().updateSettings("nobody", { weight: 2 })).toBeNull();
    expect(await tenants().find("nobody")).toBeNull();
  });
});
