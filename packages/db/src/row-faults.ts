/**
 * True when a statement failed because of the data of some row it carried (SQLSTATE class 22,
 * data exception, e.g. a string PostgreSQL cannot store; class 23, integrity, e.g. a unique key)
 * rather than because of the database itself. A group statement that fails this way is worth
 * retrying row by row, so that only the guilty row's request fails; one that fails for any other
 * reason (an outage) is not, since every row would fail again.
 */
export function isRowFault(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23)[0-9A-Z]{3}$/.test(code);
}
