import { ValidationError } from "@inferline/contracts";
import { assertPublicTarget, UnsafeTargetError, type HostLookup } from "./ssrf.ts";

/** The submit-time SSRF check for JobService: a refused target is a 422 naming `/webhook/url` (or `pointer`). */
export function webhookTargetChecker(options: { allowPrivate: boolean; lookup?: HostLookup; pointer?: string }): (url: string) => Promise<void> {
  return async (url) => {
    try {
      await assertPublicTarget(url, options);
    } catch (err) {
      if (err instanceof UnsafeTargetError) throw new ValidationError("the webhook target is refused", [{ path: options.pointer ?? "/webhook/url", message: err.message }]);
      throw err;
    }
  };
}
