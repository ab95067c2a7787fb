{
  description = "Streamwire: real-time audio/video framework in Rust on GStreamer";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs { inherit system; };
        lib = pkgs.lib;
        gst = with pkgs.gst_all_1; [
          gstreamer
          gst-plugins-base
          gst-plugins-good
          gst-plugins-bad
          gst-plugins-ugly
          gst-libav
        ];
        # libnice provides the `nice` GStreamer plugin webrtcbin needs.
        runtimePlugins = gst ++ [ pkgs.libnice ];
        pluginPath = lib.makeSearchPathOutput "lib" "lib/gstreamer-1.0" runtimePlugins;
      in
      {
        packages.default = pkgs.rustPlatform.buildRustPackage {
          pname = "streamwire";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          nativeBuildInputs = [ pkgs.pkg-config pkgs.makeWrapper ];
          buildInputs = runtimePlugins;
          # The test suite needs a loopback-only network namespace and real devices; run it with
          # scripts/test instead.
          doCheck = false;
          postInstall = ''
            wrapProgram $out/bin/streamwire --prefix GST_PLUGIN_SYSTEM_PATH_1_0 : ${pluginPath}
          '';
          meta = {
            description = "Real-time audio/video on GStreamer: capture, hardware encode, WebRTC";
            license = with lib.licenses; [ mit asl20 ];
            mainProgram = "streamwire";
          };
        };

        devShells.default = pkgs.mkShell {
          nativeBuildInputs = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.pkg-config
          ];
          buildInputs = runtimePlugins ++ lib.optionals pkgs.stdenv.isLinux [ pkgs.iproute2 pkgs.chromium ];
          GST_PLUGIN_SYSTEM_PATH_1_0 = pluginPath;
          shellHook = ''
            echo "Streamwire dev shell: $(rustc --version), GStreamer $(pkg-config --modversion gstreamer-1.0)"
          '';
        };
      });
}
