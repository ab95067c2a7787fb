// Call page: the chat panel (messages, join/leave lines, delivery results), the optional
// feedback form and the room report link.

const $ = (id) => document.getElementById(id);

/** Readable reasons of `peerleft`. */
const LEFT = {
  left: 'left', timeout: 'lost the connection', replaced: 'rejoined', kicked: 'was removed',
  slow_consumer: 'was disconnected (too slow)', session_lost: 'left',
};

export class Chat {
  /** @param {any} state the page's inspectable state (window.streamwireApp) */
  constructor(state) {
    this.state = state;
    this.client = null;
    this.unread = 0;
    $('say').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this._send();
    });
    $('feedback').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this._feedback();
    });
  }

  /** Attach to a joined client. @param {import('./streamwire.js').StreamwireClient} client */
  start(client, token) {
    this.client = client;
    $('log').replaceChildren();
    this.unread = 0;
    this._badge();
    const canSend = client.grants.has('message');
    $('text').disabled = $('send').disabled = !canSend;
    $('text').placeholder = canSend ? 'Message everyone' : 'Your token does not allow sending messages';
    $('fbstatus').textContent = '';
    // The report needs a token with the `admin` grant for this room (the server says so
    // otherwise); a link cannot send an Authorization header, so the token goes in the URL.
    $('report').href = `/report?${new URLSearchParams({ room: client.room, token })}`;
    $('report').hidden = !client.grants.has('admin');
  }

  stop() {
    this.client = null;
    $('text').disabled = $('send').disabled = true;
  }

  line(text, cls = '', who) {
    const li = document.createElement('li');
    if (who) {
      const b = document.createElement('span');
      b.className = 'who';
      b.textContent = who;
      li.append(b, ' ');
    }
    li.append(document.createTextNode(text));
    li.className = cls;
    $('log').append(li);
    li.scrollIntoView({ block: 'nearest' });
    if ($('call').classList.contains('chat-closed') && cls !== 'system') {
      this.unread += 1;
      this._badge();
    }
    return li;
  }

  _badge() {
    $('unread').hidden = this.unread === 0;
    $('unread').textContent = String(this.unread);
  }

  /** The chat was opened: nothing unread. */
  seen() {
    this.unread = 0;
    this._badge();
  }

  joined(peer) {
    this.line(`${peer.name} joined`, 'system');
  }

  left(peer, reason) {
    if (reason === 'session_lost' || reason === 'replaced') return;
    this.line(`${peer.name} ${LEFT[reason] ?? 'left'}`, 'system');
  }

  message(d) {
    this.state.messages.push({ from: d.from, seq: d.seq, text: d.text, via: d.via });
    const who = this.client?.peers.get(d.from)?.name ?? d.from;
    this.line(d.text ?? `[${d.binary?.length} bytes]`, d.via === 'datachannel' ? 'direct' : '', `${who}:`);
  }

  async _send() {
    const text = $('text').value.trim();
    if (!text || !this.client) return;
    $('text').value = '';
    const li = this.line(text, '', 'me:');
    try {
      const d = await this.client.sendMessage(text);
      this.state.deliveries.push(d);
      li.title = d.status === 'delivered' ? `delivered to ${d.recipients}` : `not delivered: ${d.reason}`;
      if (d.status !== 'delivered') li.classList.add('failed');
    } catch (e) {
      this.state.deliveries.push({ status: 'failed', reason: e.code, local: true });
      li.classList.add('failed');
      li.title = e.message;
      this.line(`Not sent: ${e.message}`, 'system failed');
    }
  }

  async _feedback() {
    const picked = document.querySelector('#rating input:checked');
    if (!picked) {
      $('fbstatus').textContent = 'Pick a rating from 1 to 5 first.';
      return;
    }
    if (!this.client) return;
    $('fbsend').disabled = true;
    try {
      await this.client.sendFeedback(Number(picked.value), $('comment').value);
      this.state.feedback = { rating: Number(picked.value), comment: $('comment').value.trim() };
      $('fbstatus').textContent = 'Thank you, feedback sent.';
      $('comment').value = '';
    } catch (e) {
      $('fbstatus').textContent = `Feedback not sent: ${e.message}`;
      this.state.feedbackError = { code: e.code, message: e.message, field: e.field };
    } finally {
      $('fbsend').disabled = false;
    }
  }
}
