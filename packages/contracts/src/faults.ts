import type { z } from "zod";
import type { FieldFault } from "./errors.ts";

/** One path segment of a JSON Pointer (RFC 6901). */
const segment = (p: PropertyKey): string => String(p).replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * zod issues as field faults whose paths are JSON Pointers under `base` (e.g. "/items/3" or
 * "/query"). An unknown key is named by its own path, not by its parent's, so the client sees
 * which field to remove.
 */
export function zodFaults(error: z.ZodError, base = ""): FieldFault[] {
  return error.issues.flatMap((issue) => {
    const at = `${base}${issue.path.map((p) => `/${segment(p)}`).join("")}`;
    if (issue.code === "unrecognized_keys")
      return issue.keys.map((key) => ({
        path: `${at}/${segment(key)}`,
        message: `unknown field ${JSON.stringify(key)}`,
      }));
    if (issue.code === "invalid_key")
      return [{ path: at, message: `invalid key: ${issue.issues.map((i) => i.message).join("; ")}` }];
    return [{ path: at || "/", message: issue.message }];
  });
}
