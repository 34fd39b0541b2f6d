import { appBundle, THREAD_ENTRY, workspaceEntry } from "../../scripts/app-bundle.ts";

export default appBundle({ main: "src/main.ts", [THREAD_ENTRY]: workspaceEntry("@inferline/inference/pool-thread") });
