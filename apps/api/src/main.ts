import { runProcess } from "@inferline/runtime/process-entry";

await runProcess("api", () => import("./api-main.ts"));
