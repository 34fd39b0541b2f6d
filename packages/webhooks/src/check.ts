import { ValidationError } from "@inferline/contracts";
import { assertPublicTarget, UnsafeTargetError, type TargetOptions } from "./ssrf.ts";

/**
 * The submit-time SSRF check for JobService: a refused target, or a host whose DNS lookup does
 * not answer within `lookupTimeoutMs`, is a 422 naming `/webhook/url` (or `pointer`).
 */
export function webhookTargetChecker(
  options: TargetOptions & { allowPrivate: boolean; pointer?: string },
): (url: string) => Promise<void> {
  return async (url) => {
    try {
      await assertPublicTarget(url, options);
    } catch (err) {
      if (err instanceof UnsafeTargetError)
        throw new ValidationError("the webhook target is refused", [
          { path: options.pointer ?? "/webhook/url", message: err.message },
        ]);
      throw err;
    }
  };
}
