import SequinsKV
import ZooKeeperTesting
import ArgumentParser
print("kv-demo")
