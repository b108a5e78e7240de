/** The route label of a request that matched no route (a 404, or one refused before routing). */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The HTTP metrics' `route` label: the router's template relative to the
 * base path (`/notifications/:id/mark-read`), never the raw path, so the
 * number of series is bounded by the number of routes. A request that
 * matched no route gets one shared label.
 */
export function routeLabel(template: string | undefined, basePath: string): string {
  if (template === undefined || template.length === 0) return UNMATCHED_ROUTE;
  let route = template;
  if (basePath !== '/' && (route === basePath || route.startsWith(`${basePath}/`))) route = route.slice(basePath.length);
  // `/notifications/` and `/notifications` are one route.
  if (route.length > 1 && route.endsWith('/')) route = route.slice(0, -1);
  return route.length === 0 ? '/' : route;
}
