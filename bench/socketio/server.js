// The Socket.IO reference: one room per session for the staff (boards and the
// bridge) and one per participant's phone; every message about a participant
// goes to its session's staff and to that participant: Holdspace's fan-out.
const { Server } = require("socket.io");
const http = require("http");
const server = http.createServer();
const io = new Server(server, { transports: ["websocket"], perMessageDeflate: false });
io.on("connection", (socket) => {
  const { role, session, seat } = socket.handshake.query;
  if (role === "participant") socket.join(`s${session}:p${seat}`);
  else socket.join(`s${session}:staff`);
  socket.on("v", (msg) => {
    io.to(`s${session}:staff`).to(`s${session}:p${msg.seat}`).emit("v", msg);
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});
