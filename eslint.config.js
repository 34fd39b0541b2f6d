// ESLint: the recommended JavaScript rules and typescript-eslint's type-checked recommended set, with
// Prettier owning layout (eslint-config-prettier, last, turns off every rule that would fight it).
// Type information comes from the root tsconfig.json, so no-floating-promises and the other
// type-aware rules see the real type of every call, including those of dependencies.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import prettier from "eslint-config-prettier";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    ignores: ["**/node_modules/", "packages/db/src/generated/", "coverage/", "**/dist/", "release/", "bench/profiles/"],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // In the recommended set already; stated so that no later entry switches it off unseen.
      "@typescript-eslint/no-floating-promises": "error",
      // A leading underscore marks a parameter a signature requires but the body does not use
      // (Express knows error middleware by its four parameters).
      "@typescript-eslint/no-unused-vars": [
        "error",
        {
          argsIgnorePattern: "^_",
          varsIgnorePattern: "^_",
          caughtErrorsIgnorePattern: "^_",
          destructuredArrayIgnorePattern: "^_",
        },
      ],
      // Off: `async` without `await` is how a method meets a Promise-returning interface and turns a
      // synchronous throw into a rejection; the promise rules above catch the real hazards.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // Tests read JSON responses through the test client's untyped bodies and assert their shape
    // with expect at run time; typing every body would restate the contracts' schemas in each test.
    files: ["e2e/**/*.ts", "apps/*/test/**/*.ts", "packages/*/test/**/*.ts", "packages/testing/src/**/*.ts"],
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    // Plain JavaScript (the configs, thread entry points, a bench probe) is outside tsconfig.json:
    // no type information, so the type-aware rules are off and Node's globals are declared.
    files: ["**/*.{js,mjs,cjs}"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  prettier,
);
