/**
 * The page served at the inspection port's root: it opens Stately's hosted inspector in an iframe
 * and relays this server's WebSocket events into it, as `@statelyai/inspect/server`'s bridge does.
 * The inspector UI itself comes from Stately, so this page needs a browser with internet access;
 * the WebSocket stream does not. `?build=<id>` on the page URL is passed on to the stream.
 */
export function inspectorBridgePage(inspectorUrl = 'https://stately.ai/inspect'): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>buildman · Stately inspector</title>
<style>html,body{height:100%;margin:0}iframe{width:100%;height:100%;border:0}</style>
</head>
<body>
<iframe id="inspector" src="${inspectorUrl}"></iframe>
<script>
  // The inspector says "@statelyai.connected" once it listens; events received before wait here.
  const iframe = document.getElementById('inspector');
  const waiting = [];
  let connected = false;
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === '@statelyai.connected' && !connected) {
      connected = true;
      for (const event of waiting.splice(0)) iframe.contentWindow.postMessage(event, '*');
    }
  });
  const ws = new WebSocket('ws://' + location.host + '/' + location.search);
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (connected) iframe.contentWindow.postMessage(event, '*');
    else waiting.push(event);
  };
</script>
</body>
</html>
`;
}
