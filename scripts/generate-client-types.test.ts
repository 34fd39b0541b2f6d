import fs from "node:fs";
import { expect, it } from "vitest";
import { CLIENT_TYPES_FILE, clientTypesSource } from "./generate-client-types.ts";

// The client's types are the API's OpenAPI schemas: a change to a zod schema of the API must
// reach them (run `tsx scripts/generate-client-types.ts` and commit the file).
it("packages/client/src/generated/api-schemas.ts is what the API's OpenAPI document generates", async () => {
  expect(fs.readFileSync(CLIENT_TYPES_FILE, "utf8")).toBe(await clientTypesSource());
});
