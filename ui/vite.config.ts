import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// Built into the Python package, which serves it at /dashboard/ (see globeguard.web).
export default defineConfig({
  plugins: [react()],
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
