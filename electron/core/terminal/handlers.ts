import type { AreaHandlers } from '../dispatch';
import type { TerminalService } from './service';

export function terminalHandlers(d: { terminals: TerminalService }): AreaHandlers<'terminal'> {
  const { terminals } = d;
  return {
    'terminal:open': (ctx, input) => terminals.start(ctx.client, input.host, input.cols, input.rows, ctx.sshAuth(), ctx.signal),
    'terminal:input': (ctx, input) => (terminals.write(ctx.client, input.id, input.data), {}),
    'terminal:resize': (ctx, input) => (terminals.resize(ctx.client, input.id, input.cols, input.rows), {}),
    'terminal:close': (ctx, input) => (terminals.close(ctx.client, input.id), {}),
  };
}
