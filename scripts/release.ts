// Makes a release of the published packages (@inferline/client and the `inferline` CLI), which
// always share one version: sets it in both package.json files and in the client's version.ts
// (the User-Agent and `inferline --version` read it), then builds, checks (publint,
// arethetypeswrong, dependencies) and packs them into release/. Publishing stays a deliberate
// step of its own: the script prints the `npm publish` commands. See docs/releasing.md.
//
// Usage: tsx scripts/release.ts <patch|minor|major|x.y.z>   (pnpm release <…>)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import semver from "semver";
import { checkPackages } from "./check-packages.ts";
import { PUBLISHED, readManifest, ROOT, VERSION_FILE } from "./published-packages.ts";

const RELEASE_DIR = path.join(ROOT, "release");

/** The version a bump names: an explicit x.y.z, or the current one's next patch, minor or major. */
export function nextVersion(current: string, bump: string): string {
  const next =
    bump === "patch" || bump === "minor" || bump === "major" ? semver.inc(current, bump) : semver.valid(bump);
  if (!next) throw new Error(`expected patch, minor, major or a version such as 1.2.3, not ${JSON.stringify(bump)}`);
  if (!semver.gt(next, current)) throw new Error(`${next} is not above the current version ${current}`);
  return next;
}

/** Writes `version` into every published package.json and into version.ts. */
export function setVersion(version: string): void {
  for (const pkg of PUBLISHED) {
    const file = path.join(ROOT, pkg.dir, "package.json");
    const text = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, text.replace(/"version": "[^"]+"/, `"version": "${version}"`));
  }
  fs.writeFileSync(
    VERSION_FILE,
    fs.readFileSync(VERSION_FILE, "utf8").replace(/VERSION = "[^"]+"/, `VERSION = "${version}"`),
  );
}

function main(bump: string | undefined): void {
  if (!bump) throw new Error("usage: pnpm release <patch|minor|major|x.y.z>");
  const current = readManifest(PUBLISHED[0]!.dir).version;
  const version = nextVersion(current, bump);
  setVersion(version);
  fs.rmSync(RELEASE_DIR, { recursive: true, force: true });
  fs.mkdirSync(RELEASE_DIR);
  const tarballs = checkPackages(RELEASE_DIR);
  console.log(
    `\nrelease ${current} -> ${version}: ${tarballs.length} packages in ${path.relative(process.cwd(), RELEASE_DIR) || "."}/`,
  );
  console.log(`commit the version ("Release ${version}"), tag it v${version}, then publish:`);
  for (const tarball of tarballs) console.log(`  npm publish --access public ${path.relative(process.cwd(), tarball)}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv[2]);
  } catch (err) {
    console.error(`release: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
