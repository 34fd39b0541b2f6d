import { describe, expect, it } from "vitest";
import { isStorableText, StorableText, UNSTORABLE_TEXT_MESSAGE } from "../src/text.ts";

describe("isStorableText", () => {
  it.each(["", "plain", "héllo wörld", "emoji 😀 in a pair", "\ud83d\ude00", "tab\tand\nnewline", "\u0001 control"])(
    "stores %j",
    (s) => {
      expect(isStorableText(s)).toBe(true);
    },
  );

  it.each([
    ["NUL", "a\u0000b"],
    ["a lone high surrogate", "a\ud800b"],
    ["a high surrogate at the end", "emoji \ud83d"],
    ["a lone low surrogate", "\ude00 x"],
    ["a reversed pair", "\ude00\ud83d"],
  ])("refuses %s", (_label, s) => {
    expect(isStorableText(s)).toBe(false);
  });
});

describe("StorableText", () => {
  it("refuses unstorable text with the documented message", () => {
    expect(StorableText.safeParse("ok").success).toBe(true);
    expect(StorableText.safeParse("\u0000").error?.issues[0]?.message).toBe(UNSTORABLE_TEXT_MESSAGE);
  });
});
