/// <reference types="node" />
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

const require = createRequire(import.meta.url);

// The API docs page (/docs, served by the package) runs Swagger UI from these files, copied
// into dist/docs: no CDN at run time, and no inline script, so its Content-Security-Policy can
// allow scripts from its own origin only. Swagger UI's icon, LICENSE and NOTICE (Apache-2.0) go
// too.
function apiDocsAssets(): Plugin {
  const swagger = (name: string) => require.resolve(`swagger-ui-dist/${name}`);
  const files: Record<string, string> = {
    "swagger-ui-bundle.js": swagger("swagger-ui-bundle.js"),
    "swagger-ui.css": swagger("swagger-ui.css"),
    LICENSE: swagger("LICENSE"),
    NOTICE: swagger("NOTICE"),
    "favicon-32x32.png": swagger("favicon-32x32.png"),
    "favicon-16x16.png": swagger("favicon-16x16.png"),
    "swagger-init.js": fileURLToPath(new URL("./src/docs/swagger-init.js", import.meta.url)),
  };
  return {
    name: "globeguard-api-docs",
    apply: "build",
    generateBundle() {
      for (const [name, path] of Object.entries(files)) {
        const bytes = readFileSync(path);
        // The source maps are not shipped: drop the comments that would make devtools ask.
        const source = name.endsWith(".png")
          ? bytes
          : bytes.toString("utf8").replace(/\n\/[/*]# sourceMappingURL=\S+/g, "");
        this.emitFile({ type: "asset", fileName: `docs/${name}`, source });
      }
    },
  };
}

// Built into the Python package, which serves it at /dashboard/ (see globeguard.web).
export default defineConfig({
  plugins: [react(), apiDocsAssets()],
  base: "/dashboard/",
  build: {
    outDir: "../src/globeguard/web/dist",
    emptyOutDir: true,
    // One admin page: a single chunk is simpler to serve and cache than a split.
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000", "/dashboard/config.json": "http://127.0.0.1:8000" },
  },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
