// The Swagger UI is served by @fastify/static, which Nest's SwaggerModule loads
// lazily at start and, if the import throws for any reason, reports as "not
// installed" before calling process.exit(1): the whole run dies with no test
// named. This file loads it directly, so a module-loader regression under a
// new Node.js release fails here, by name, instead.
describe('lazily loaded dependencies, under Jest on this Node.js', () => {
  it('@fastify/static loads, with its ESM-only content-disposition', async () => {
    const mod = (await import('@fastify/static')) as { default: unknown; fastifyStatic: unknown };
    expect(typeof mod.default).toBe('function');
    expect(mod.fastifyStatic).toBe(mod.default);
  });
});
