import { describe, expect, it } from "vitest";
import { versionFaults } from "./check-packages.ts";
import { nextVersion } from "./release.ts";

describe("release", () => {
  it("bumps patch, minor and major, takes an explicit higher version, and refuses anything else", () => {
    expect(nextVersion("0.1.0", "patch")).toBe("0.1.1");
    expect(nextVersion("0.1.3", "minor")).toBe("0.2.0");
    expect(nextVersion("0.9.0", "major")).toBe("1.0.0");
    expect(nextVersion("0.1.0", "0.2.0-rc.1")).toBe("0.2.0-rc.1");
    expect(() => nextVersion("0.2.0", "0.1.9")).toThrow(/not above the current version 0.2.0/);
    expect(() => nextVersion("0.1.0", "latest")).toThrow(/expected patch, minor, major or a version/);
  });

  it("finds one version in every published package and in the client's version.ts", () => {
    expect(versionFaults()).toEqual([]);
  });
});
