/** Every item of a cursor-paged list, page after page until the cursor is null, each fetched when the loop asks for it. */
export async function* pages<Page extends { nextCursor: string | null }, Item>(
  fetchPage: (cursor: string | undefined) => Promise<Page>,
  items: (page: Page) => Item[],
): AsyncGenerator<Item> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    yield* items(page);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}
