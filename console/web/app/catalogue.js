// The engine's catalogue of component kinds (engine/README.md), with each profile's defaults
// and an icon (SVG path data on a 24x24 box, drawn inline).

export const KINDS = {
  client: { label: 'Client', role: 'source', icon: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm-7 8a7 7 0 0 1 14 0z' },
  web_server: { label: 'Web server', role: 'station', capacity: 15000, latency_ms: 2, servers: 30, queue: 1000, icon: 'M3 4h18v6H3zM3 14h18v6H3zM6 7h2M6 17h2' },
  api_server: { label: 'API server', role: 'station', capacity: 8000, latency_ms: 5, servers: 40, queue: 1000, icon: 'M4 4h16v16H4zM8 9l-2 3 2 3M16 9l2 3-2 3M13 8l-2 8' },
  microservice: { label: 'Microservice', role: 'station', capacity: 5000, latency_ms: 3, servers: 15, queue: 1000, icon: 'M12 2l9 5v10l-9 5-9-5V7zM12 12l9-5M12 12v10M12 12L3 7' },
  postgresql: { label: 'PostgreSQL', role: 'station', capacity: 5000, latency_ms: 3, servers: 15, queue: 500, icon: 'M4 6c0-2 16-2 16 0v12c0 2-16 2-16 0zM4 6c0 2 16 2 16 0M4 12c0 2 16 2 16 0' },
  mongodb: { label: 'MongoDB', role: 'station', capacity: 8000, latency_ms: 4, servers: 32, queue: 500, icon: 'M12 2c4 5 5 9 0 20-5-11-4-15 0-20zM12 8v14' },
  redis: { label: 'Redis cache', role: 'cache', capacity: 100000, latency_ms: 0.1, servers: 10, queue: 10000, hit_ratio: 0.8, icon: 'M3 8l9-4 9 4-9 4zM3 12l9 4 9-4M3 16l9 4 9-4' },
  nginx_lb: { label: 'NGINX load balancer', role: 'balancer', capacity: 50000, latency_ms: 0.5, servers: 25, queue: 10000, icon: 'M12 3v6M12 9l-7 6M12 9l7 6M12 9v6M3 15h4v5H3zM10 15h4v5h-4zM17 15h4v5h-4z' },
  api_gateway: { label: 'API gateway', role: 'balancer', capacity: 20000, latency_ms: 2, servers: 40, queue: 5000, icon: 'M3 21V9l9-6 9 6v12M8 21v-7h8v7M3 21h18' },
  cdn: { label: 'CDN edge', role: 'cache', capacity: 200000, latency_ms: 0.1, servers: 20, queue: 100000, hit_ratio: 0.9, icon: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18' },
  message_queue: { label: 'Message queue', role: 'station', capacity: 100000, latency_ms: 1, servers: 100, queue: 1000000, icon: 'M3 8h18v8H3zM7 8v8M11 8v8M15 8v8' },
  object_storage: { label: 'Object storage', role: 'station', capacity: 5000, latency_ms: 20, servers: 100, queue: 10000, icon: 'M4 7l8-4 8 4v10l-8 4-8-4zM4 7l8 4 8-4M12 11v10' },
  service: { label: 'Generic service', role: 'station', capacity: 1000, latency_ms: 1, servers: 1, queue: 'unbounded', icon: 'M5 5h14v14H5zM9 9h6v6H9z' },
};

export const KIND_IDS = Object.keys(KINDS);

/** The settings a component of `kind` may override, as form fields. */
export function fieldsFor(kind) {
  const k = KINDS[kind] || KINDS.service;
  if (kind === 'client') return [];
  const f = [
    { key: 'replicas', label: 'Replicas', type: 'int', def: 1, min: 1 },
    { key: 'servers', label: 'Servers per replica', type: 'int', def: k.servers, min: 1 },
    { key: 'queue_capacity', label: 'Queue capacity', type: 'intOrUnbounded', def: k.queue },
    { key: 'timeout_ms', label: 'Timeout (ms)', type: 'num', def: 'none' },
    { key: 'failure_probability', label: 'Failure probability', type: 'num', def: 0, min: 0, max: 1 },
    { key: 'exit_probability', label: 'Exit probability', type: 'num', def: 0, min: 0, max: 1 },
    { key: 'balancer', label: 'Balancer over replicas', type: 'enum', options: ['round_robin', 'least_connections', 'random'], def: 'round_robin' },
    { key: 'routing', label: 'Routing', type: 'enum', options: ['probabilistic', 'round_robin', 'least_connections', 'random'], def: k.role === 'balancer' ? 'round_robin' : 'probabilistic' },
  ];
  if (k.role === 'cache') f.push({ key: 'hit_ratio', label: 'Hit ratio', type: 'num', def: k.hit_ratio, min: 0, max: 1 });
  return f;
}

export const DISTS = ['exponential', 'deterministic', 'lognormal', 'erlang', 'uniform'];

/** A new component of `kind` named `name`, valid as it is. */
export function newComponent(kind, name) {
  const c = { name, kind };
  if (kind === 'client') c.traffic = { type: 'open', rate: 100 };
  return c;
}

export function iconSvgPath(kind) { return (KINDS[kind] || KINDS.service).icon; }
