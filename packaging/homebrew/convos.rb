# Homebrew formula for convos. Not in a tap yet: install from this file with
#     brew install --HEAD ./packaging/homebrew/convos.rb
# then run it in the background with
#     brew services start convos
# (or use `convos service install`, which writes its own LaunchAgent; use one or the
# other, not both: the daemon takes an exclusive lock on its data dir).
class Convos < Formula
  desc "Lossless, always-current local archive of your ChatGPT conversations"
  homepage "https://github.com/convos-archive/convos"
  license "MIT"
  head "https://github.com/convos-archive/convos.git", branch: "main"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args
    pkgshare.install "config.example.toml"
    doc.install "README.md"
  end

  def post_install
    (var/"log/convos").mkpath
  end

  def caveats
    <<~EOS
      convos needs no configuration; an example with every option and its default is
        #{opt_pkgshare}/config.example.toml
      Copy it to ~/Library/Application Support/convos/config.toml to change settings.

      Watching ~/Downloads for data exports needs permission: allow convos in
        System Settings > Privacy & Security > Files and Folders (or Full Disk Access).
    EOS
  end

  service do
    run [opt_bin/"convos", "run"]
    # Restart after a crash but not after a clean exit 0 (a stop request). launchd cannot
    # exempt exit 78 (bad configuration): it is retried, throttled, until the config is fixed.
    keep_alive successful_exit: false
    process_type :background
    log_path var/"log/convos/convos.log"
    error_log_path var/"log/convos/convos.log"
  end

  test do
    # A HEAD build's Homebrew version ("HEAD-1a2b3c4") is not the crate's version.
    assert_match(/^convos \d+\.\d+\.\d+/, shell_output("#{bin}/convos --version"))

    (testpath/"conversations.json").write <<~JSON
      [{"id": "brew-test-1", "title": "Hello from brew",
        "create_time": 1700000000, "update_time": 1700000000, "current_node": "n1",
        "mapping": {
          "n0": {"id": "n0", "message": null, "parent": null, "children": ["n1"]},
          "n1": {"id": "n1", "parent": "n0", "children": [],
                 "message": {"id": "n1", "author": {"role": "user"}, "create_time": 1700000000,
                             "content": {"content_type": "text", "parts": ["hi"]},
                             "metadata": {}}}}}]
    JSON
    data = testpath/"data"
    system bin/"convos", "--data-dir", data, "import", testpath/"conversations.json"
    assert_match "Hello from brew", shell_output("#{bin}/convos --data-dir #{data} list --json")
  end
end
