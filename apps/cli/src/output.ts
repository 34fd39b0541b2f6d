/** One column of a table: its header and how a record fills it. */
export interface Column<T> {
  header: string;
  value: (record: T) => string | number | boolean | null | undefined;
}

/**
 * Records as the CLI prints them for people: a header line, then one line per record, columns
 * left-aligned to their widest cell and two spaces apart; an absent value is `-`, and tabs or
 * line breaks inside a value are spaces, so each record stays one line. `--json` prints JSON instead.
 */
export function formatTable<T>(records: readonly T[], columns: ReadonlyArray<Column<T>>): string {
  const cell = (value: ReturnType<Column<T>["value"]>) => {
    return value === null || value === undefined || value === "" ? "-" : String(value).replace(/[\t\r\n]+/g, " ");
  };
  const rows = [
    columns.map((c) => c.header.toUpperCase()),
    ...records.map((r) => columns.map((c) => cell(c.value(r)))),
  ];
  const widths = columns.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return (
    rows
      .map((row) => row.map((text, i) => (i === row.length - 1 ? text : text.padEnd(widths[i]!))).join("  "))
      .join("\n") + "\n"
  );
}

/** Prints records as a table, or as JSON with `json` (an array, or the one record of a single-record command). */
export function printRecords<T>(
  records: readonly T[] | T,
  columns: ReadonlyArray<Column<T>>,
  json: boolean | undefined,
): void {
  const list = Array.isArray(records) ? (records as readonly T[]) : [records as T];
  process.stdout.write(json ? `${JSON.stringify(records, null, 2)}\n` : formatTable(list, columns));
}
