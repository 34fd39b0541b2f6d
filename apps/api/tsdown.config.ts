import { appBundle, workspaceEntry } from "../../scripts/app-bundle.ts";

export default appBundle({ main: "src/main.ts", migrate: workspaceEntry("@inferline/db/migrate-cli") });
