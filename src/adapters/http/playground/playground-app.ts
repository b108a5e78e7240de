/**
 * The playground page's script, bundled with the browser SDK by
 * playground-bundle.ts. It drives one SignalClient at a time and shows what
 * it does: the state machine, every frame through the SDK's debug hook,
 * room answers, close codes, and the user's inbox over REST.
 */
import { SignalClient, type ConnectionState, type RoomsResult } from '../../sdk/signal-client.ts';
import { closeCodeRows, describeClose } from './close-meanings.ts';
import { byId, element, errorMessage, logLine, setStatus } from './dom.ts';
import { FrameList } from './frame-list.ts';
import { InboxPanel } from './inbox-panel.ts';
import type { PlaygroundConfig } from './playground-routes.ts';

const NOTIFICATION_EVENT = 'observation/signal/notification/created';

const ui = {
  boot: byId('boot'),
  devToken: byId('dev-token'),
  devAbsent: byId('dev-absent'),
  devUser: byId<HTMLInputElement>('dev-user'),
  devRoles: byId<HTMLInputElement>('dev-roles'),
  getToken: byId<HTMLButtonElement>('get-token'),
  token: byId<HTMLTextAreaElement>('token'),
  tokenStatus: byId('token-status'),
  heartbeatInterval: byId<HTMLInputElement>('heartbeat-interval'),
  connect: byId<HTMLButtonElement>('connect'),
  disconnect: byId<HTMLButtonElement>('disconnect'),
  reconnect: byId<HTMLButtonElement>('reconnect'),
  heartbeat: byId<HTMLButtonElement>('heartbeat'),
  state: byId('state'),
  clientId: byId('client-id'),
  userId: byId('user-id'),
  lastClose: byId('last-close'),
  history: byId('history'),
  closeCodes: byId('close-codes'),
  rooms: byId<HTMLInputElement>('rooms'),
  join: byId<HTMLButtonElement>('join'),
  leave: byId<HTMLButtonElement>('leave'),
  joinedRooms: byId('joined-rooms'),
  roomResults: byId('room-results'),
  frames: byId('frames'),
  clearFrames: byId<HTMLButtonElement>('clear-frames'),
  stateSteps: Array.from(document.querySelectorAll<HTMLElement>('.states li')),
};

async function loadConfig(): Promise<PlaygroundConfig> {
  const url = document.body.dataset.configUrl;
  if (url === undefined) throw new Error('the page names no configuration URL');
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`configuration: HTTP ${response.status}`);
  return (await response.json()) as PlaygroundConfig;
}

function commaList(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

function listOrNone(items: readonly string[]): string {
  return items.length === 0 ? 'none' : items.join(', ');
}

function heartbeatMs(): number {
  const seconds = Number(ui.heartbeatInterval.value);
  return Number.isFinite(seconds) && seconds >= 1 ? Math.min(300, Math.round(seconds)) * 1000 : 30_000;
}

function start(config: PlaygroundConfig): void {
  const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${config.wsPath}`;
  const frames = new FrameList(ui.frames);
  const inbox = new InboxPanel(config.basePath, () => ui.token.value.trim(), {
    list: byId('inbox'),
    unread: byId('unread-count'),
    status: byId('inbox-status'),
    refresh: byId('refresh-inbox'),
  });
  let client: SignalClient | null = null;
  const seen = new Set<ConnectionState>();

  const render = (): void => {
    const state = client?.state ?? 'idle';
    ui.state.textContent = state.toUpperCase();
    for (const step of ui.stateSteps) {
      const name = step.dataset.state as ConnectionState;
      step.classList.toggle('seen', seen.has(name));
      if (name === state) step.setAttribute('aria-current', 'step');
      else step.removeAttribute('aria-current');
    }
    const live = client !== null && client.state !== 'idle' && client.state !== 'closed';
    const ready = client !== null && client.info !== null;
    ui.disconnect.disabled = !live;
    ui.reconnect.disabled = client === null;
    for (const button of [ui.heartbeat, ui.join, ui.leave]) button.disabled = !ready;
    ui.joinedRooms.textContent = listOrNone(client?.joinedRooms ?? []);
  };

  const logRooms = (action: string, result: RoomsResult): void => {
    const text = `${action} → accepted: ${listOrNone(result.rooms)} · rejected: ${listOrNone(result.rejected)}`;
    logLine(ui.roomResults, text, { error: result.rejected.length > 0 });
    render();
  };

  const open = (token: string): void => {
    const next = new SignalClient({ url: wsUrl, token, ecdhInfo: config.ecdhInfo, heartbeatIntervalMs: heartbeatMs() });
    client = next;
    frames.useToken(token);
    seen.clear();
    const mine = (): boolean => client === next;
    next.onFrame((frame) => {
      if (mine()) frames.add(frame);
    });
    next.on('state', ({ state }) => {
      if (!mine()) return;
      if (state === 'connecting') seen.clear();
      seen.add(state);
      logLine(ui.history, state.toUpperCase());
      render();
    });
    next.on('connected', (info) => {
      if (!mine()) return;
      ui.clientId.textContent = info.clientId;
      ui.userId.textContent = info.userId;
      logLine(ui.history, `connected: client ${info.clientId}, user ${info.userId}, ${info.serverPublicKey === undefined ? 'plaintext' : 'encrypted'}`);
      render();
      void inbox.refresh();
    });
    next.on('close', ({ code, reason, willReconnect }) => {
      const text = `${describeClose(code, reason)}${willReconnect ? ' (the SDK reconnects)' : ''}`;
      ui.lastClose.textContent = text;
      logLine(ui.history, `closed ${text}`, { error: code !== 1000 });
      render();
    });
    next.on('error', ({ source, message }) => {
      if (mine()) logLine(ui.history, `error from ${source}: ${message}`, { error: true });
    });
    next.on('reconnecting', ({ attempt, delayMs }) => {
      if (mine()) logLine(ui.history, `reconnect attempt ${attempt} in ${delayMs} ms`);
    });
    next.on('rejoined', (result) => {
      if (mine()) logRooms('rejoin', result);
    });
    next.onEvent(NOTIFICATION_EVENT, (data) => {
      if (mine()) inbox.pushed(data);
    });
    // The close event above reports every failure, with its code.
    next.connect().catch(() => undefined);
    render();
  };

  const tokenOrComplain = (): string | null => {
    const token = ui.token.value.trim();
    if (token !== '') return token;
    setStatus(ui.tokenStatus, 'Paste a token (or get a dev token) first.', true);
    ui.token.focus();
    return null;
  };

  ui.connect.addEventListener('click', () => {
    const token = tokenOrComplain();
    if (token === null) return;
    if (client !== null && client.state !== 'idle' && client.state !== 'closed') {
      logLine(ui.history, 'already connected or connecting: use Reconnect to start a new session');
      return;
    }
    open(token);
  });
  ui.disconnect.addEventListener('click', () => {
    client?.close();
    // The button just disabled itself; keep keyboard users where they can connect again.
    ui.connect.focus();
  });
  ui.reconnect.addEventListener('click', () => {
    const token = tokenOrComplain();
    if (token === null) return;
    client?.close();
    open(token);
  });
  ui.heartbeat.addEventListener('click', () => {
    client?.send('heartbeat').catch((error: unknown) => logLine(ui.history, `heartbeat: ${errorMessage(error)}`, { error: true }));
  });

  const rooms = (action: 'join' | 'leave'): void => {
    const names = commaList(ui.rooms.value);
    if (client === null || names.length === 0) {
      logLine(ui.roomResults, `${action}: type one or more room names first`, { error: true });
      ui.rooms.focus();
      return;
    }
    const request = action === 'join' ? client.join(names) : client.leave(names);
    request.then(
      (result) => logRooms(action, result),
      (error: unknown) => logLine(ui.roomResults, `${action} failed: ${errorMessage(error)}`, { error: true }),
    );
  };
  ui.join.addEventListener('click', () => rooms('join'));
  ui.leave.addEventListener('click', () => rooms('leave'));
  ui.clearFrames.addEventListener('click', () => frames.clear());
  byId<HTMLButtonElement>('refresh-inbox').addEventListener('click', () => void inbox.refresh());

  ui.getToken.addEventListener('click', () => void devToken(config, inbox));

  for (const row of closeCodeRows()) {
    ui.closeCodes.append(
      element('tr', {}, [element('td', { text: String(row.code) }), element('td', { text: row.kind }), element('td', { text: row.meaning })]),
    );
  }
  ui.devToken.hidden = !config.devRoutes;
  ui.devAbsent.hidden = config.devRoutes;
  render();
}

async function devToken(config: PlaygroundConfig, inbox: InboxPanel): Promise<void> {
  const userId = ui.devUser.value.trim();
  if (userId === '') {
    setStatus(ui.tokenStatus, 'Type a user id first.', true);
    ui.devUser.focus();
    return;
  }
  if (ui.getToken.getAttribute('aria-busy') === 'true') return;
  const roles = commaList(ui.devRoles.value);
  // Busy rather than disabled: disabling the focused button would drop keyboard focus.
  ui.getToken.setAttribute('aria-busy', 'true');
  try {
    const response = await fetch(`${config.basePath}/dev/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(roles.length === 0 ? { userId } : { userId, roles }),
    });
    const body = (await response.json().catch(() => null)) as { token?: unknown; message?: unknown } | null;
    if (!response.ok || typeof body?.token !== 'string') {
      throw new Error(typeof body?.message === 'string' ? body.message : `HTTP ${response.status}`);
    }
    ui.token.value = body.token;
    setStatus(ui.tokenStatus, `Dev token for ${userId}${roles.length === 0 ? '' : ` with roles ${roles.join(', ')}`} is in the token box.`);
    void inbox.refresh();
  } catch (error) {
    setStatus(ui.tokenStatus, `Dev token: ${errorMessage(error)}`, true);
  } finally {
    ui.getToken.removeAttribute('aria-busy');
  }
}

loadConfig().then(
  (config) => {
    start(config);
    ui.boot.remove();
  },
  (error: unknown) => setStatus(ui.boot, `The playground could not start: ${errorMessage(error)}`, true),
);
