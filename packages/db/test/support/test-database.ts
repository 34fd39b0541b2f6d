import { afterAll, beforeAll } from "vitest";
import { Database, type DatabaseOptions } from "@inferline/db";
// @inferline/testing depends on @inferline/db, so @inferline/db cannot declare it back (a cycle in
// the package graph): it resolves through the workspace root, which has it as a devDependency.
import { createTestDatabase, type TestDatabase } from "@inferline/testing";

/**
 * A Database on a database of this test file's own, cloned from the run's migrated template in
 * beforeAll, closed and dropped in afterAll. Returns a getter, since the database exists only
 * once beforeAll has run.
 */
export function useTestDatabase(options: DatabaseOptions = {}): () => Database {
  let testDb: TestDatabase | undefined;
  let db: Database | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    db = new Database(testDb.url, { poolSize: 4, ...options });
  });
  afterAll(async () => {
    await db?.close();
    await testDb?.drop();
  });
  return () => {
    if (!db) throw new Error("the test database is opened in beforeAll: call this getter inside a test or hook");
    return db;
  };
}
